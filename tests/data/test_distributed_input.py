"""Each worker reads its own files (explicit input context, or the FILE
auto-shard policy tf.distribute applies), and a tf.data service can run the
streamed pipeline."""

import collections
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from corpus_helpers import batches, make_pairs, write_tsv
from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

from keras_lm.data import make_lm_dataset, make_translation_dataset, prepare_shards

PAIRS = make_pairs(160, seed=11)
KWARGS = dict(batch_size=4, max_length=16, shuffle=False, bucket_boundaries=())


@pytest.fixture
def files(tmp_path):
    paths = []
    for index in range(4):
        name = f"part-{index}.tsv" + (".gz" if index % 2 else "")
        paths.append(
            str(write_tsv(tmp_path / name, PAIRS[index * 40 : index * 40 + 40]))
        )
    return paths


def _rows(dataset):
    return [
        tuple(row)
        for inputs, _, _ in dataset.as_numpy_iterator()
        for row in inputs["encoder_token_ids"]
    ]


def _context(index):
    return tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2
    )


def _check_split(workers, files, tokenizer):
    """Worker i read exactly files i, i + 2; together they read everything."""
    for index, worker in enumerate(workers):
        own = [pathlib.Path(f) for f in files[index::2]]
        assert batches(worker) == batches(
            make_translation_dataset(own, tokenizer, **KWARGS)
        )
    everything = _rows(
        make_translation_dataset([pathlib.Path(f) for f in files], tokenizer, **KWARGS)
    )
    together = collections.Counter(_rows(workers[0]) + _rows(workers[1]))
    assert together == collections.Counter(everything)
    assert len(everything) == len(PAIRS)


def test_input_context_gives_each_worker_its_own_files(tokenizer, files, tmp_path):
    pattern = str(tmp_path / "part-*")
    workers = [
        make_translation_dataset(
            pattern, tokenizer, input_context=_context(i), **KWARGS
        )
        for i in range(2)
    ]
    _check_split(workers, files, tokenizer)


def test_file_auto_shard_policy_splits_by_file(tokenizer, files, tmp_path):
    # _AutoShardDataset is the rewrite tf.distribute applies for each worker.
    dataset = make_translation_dataset(str(tmp_path / "part-*"), tokenizer, **KWARGS)
    policy = dataset.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.FILE
    workers = [_AutoShardDataset(dataset, num_workers=2, index=i) for i in range(2)]
    _check_split(workers, files, tokenizer)


def test_shards_split_between_workers(tokenizer, files, tmp_path):
    prepare_shards(files, tokenizer, tmp_path / "shards")
    shards = str(tmp_path / "shards")
    workers = [
        make_translation_dataset(shards, tokenizer, input_context=_context(i), **KWARGS)
        for i in range(2)
    ]
    _check_split(workers, files, tokenizer)


def test_fewer_files_than_workers_is_explained(tokenizer, files):
    with pytest.raises(ValueError, match="1 file.*for 2 input pipelines"):
        make_lm_dataset(
            files[0],
            tokenizer,
            sequence_length=4,
            batch_size=2,
            input_context=_context(0),
        )


@pytest.mark.slow
def test_tf_data_service_runs_the_pipeline_for_fit(tokenizer, files, tmp_path):
    dispatcher = tf.data.experimental.service.DispatchServer()
    address = dispatcher.target.split("://")[1]
    worker = tf.data.experimental.service.WorkerServer(
        tf.data.experimental.service.WorkerConfig(dispatcher_address=address)
    )
    dataset = make_translation_dataset(
        str(tmp_path / "part-*"), tokenizer, None, max_length=16, max_tokens=64, seed=0
    )
    served = dataset.apply(
        tf.data.experimental.service.distribute(
            processing_mode="parallel_epochs", service=dispatcher.target
        )
    )
    first = next(iter(served))
    assert (
        first[0]["encoder_token_ids"].shape[0] * first[0]["encoder_token_ids"].shape[1]
        <= 64
    )

    encoder = keras.Input(shape=(None,), dtype="int32", name="encoder_token_ids")
    decoder = keras.Input(shape=(None,), dtype="int32", name="decoder_token_ids")
    embedding = keras.layers.Embedding(tokenizer.vocabulary_size(), 8)
    context = keras.ops.mean(embedding(encoder), axis=1, keepdims=True)
    logits = keras.layers.Dense(tokenizer.vocabulary_size())(
        embedding(decoder) + context
    )
    model = keras.Model(
        {"encoder_token_ids": encoder, "decoder_token_ids": decoder}, logits
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(served, steps_per_epoch=1, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    del worker
