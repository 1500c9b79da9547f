"""Streamed corpora (files, globs, gzip, datasets, TFDS) give the batches the
in-memory pipelines give, and bad lines are named, never silently lost."""

import collections
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from corpus_helpers import batches, make_pairs, write_lines, write_tsv

import keras_lm
from keras_lm.data import make_lm_dataset, make_translation_dataset, sample_texts
from keras_lm.tokenizers import SentencePieceTokenizer, train_sentencepiece

PAIRS = make_pairs(90, seed=3)
DOCUMENTS = [f"{source} . {target}" for source, target in PAIRS]


@pytest.fixture
def tsv_glob(tmp_path):
    """PAIRS split over a plain and a gzip file, in glob (name) order."""
    write_tsv(tmp_path / "part-0.tsv", PAIRS[:40])
    write_tsv(tmp_path / "part-1.tsv.gz", PAIRS[40:])
    return str(tmp_path / "part-*")


@pytest.mark.parametrize("max_tokens", [None, 64])
def test_tsv_files_stream_the_in_memory_batches(tokenizer, tsv_glob, max_tokens):
    kwargs = dict(max_length=16, shuffle=False, max_tokens=max_tokens)
    kwargs["batch_size"] = None if max_tokens else 8
    streamed = make_translation_dataset(tsv_glob, tokenizer, **kwargs)
    in_memory = make_translation_dataset(PAIRS, tokenizer, **kwargs)
    expected = batches(in_memory)
    assert len(expected) > 3
    assert batches(streamed) == expected


def test_dataset_of_pairs_or_lines_streams_like_a_list(tokenizer):
    kwargs = dict(batch_size=8, max_length=16, shuffle=False, truncate=False)
    expected = batches(make_translation_dataset(PAIRS, tokenizer, **kwargs))
    pairs = tf.data.Dataset.from_tensor_slices(tuple(map(list, zip(*PAIRS))))
    lines = tf.data.Dataset.from_tensor_slices([f"{s}\t{t}" for s, t in PAIRS])
    assert batches(make_translation_dataset(pairs, tokenizer, **kwargs)) == expected
    assert batches(make_translation_dataset(lines, tokenizer, **kwargs)) == expected


def test_streamed_shuffle_keeps_every_pair_and_changes_order(tokenizer, tsv_glob):
    kwargs = dict(batch_size=1, max_length=32, bucket_boundaries=())
    ordered = make_translation_dataset(tsv_glob, tokenizer, shuffle=False, **kwargs)
    shuffled = make_translation_dataset(tsv_glob, tokenizer, seed=0, **kwargs)

    def rows(dataset):
        return [tuple(x["encoder_token_ids"][0]) for x, _, _ in dataset]

    assert rows(shuffled) != rows(ordered)
    assert sorted(rows(shuffled)) == sorted(rows(ordered))


def test_empty_glob_names_the_pattern(tokenizer, tmp_path):
    pattern = str(tmp_path / "nothing-*.tsv")
    with pytest.raises(ValueError, match=f"No file matches '{re.escape(pattern)}'"):
        make_translation_dataset(pattern, tokenizer, batch_size=2)
    with pytest.raises(ValueError, match="nothing-"):
        make_lm_dataset(pattern, tokenizer, sequence_length=4, batch_size=2)


def _bad_file(tmp_path, bad):
    path = tmp_path / "bad.tsv"
    path.write_bytes(
        b"the cat\tle chat\n\nopen\touvrir\n" + bad + b"\nsave\tenregistrer\n"
    )
    return path


@pytest.mark.parametrize(
    "bad, reason",
    [
        (b"no tab here", "no tab between source and target"),
        (b"bad \xff byte\toctet", "not valid UTF-8"),
        (b"the file\t\tle fichier", "an empty side"),
    ],
)
def test_bad_line_is_an_error_naming_file_and_line(tokenizer, tmp_path, bad, reason):
    path = _bad_file(tmp_path, bad)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=re.escape(f"{path}:4: {reason}")
    ):
        dataset = make_translation_dataset(path, tokenizer, batch_size=2)
        list(dataset)


def test_skipped_bad_lines_are_each_reported(tokenizer, tmp_path, capfd):
    path = _bad_file(tmp_path, b"no tab here")
    dataset = make_translation_dataset(
        path, tokenizer, batch_size=1, shuffle=False, on_bad_line="skip"
    )
    assert len(list(dataset)) == 3
    assert f"keras_lm: skipped {path}:4: no tab" in capfd.readouterr().err


def test_lm_invalid_utf8_names_file_and_line(tokenizer, tmp_path):
    path = tmp_path / "docs.txt"
    path.write_bytes(b"the cat\nbad \xfe\n")
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"{path}:2: not valid"):
        list(make_lm_dataset(path, tokenizer, sequence_length=2, batch_size=1))


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_lm_files_stream_the_in_memory_windows(tokenizer, tmp_path, drop_remainder):
    write_lines(tmp_path / "a.txt", DOCUMENTS[:50] + ["", "   "])
    write_lines(tmp_path / "b.txt.gz", DOCUMENTS[50:])
    kwargs = dict(
        sequence_length=9,
        batch_size=4,
        shuffle=False,
        drop_remainder=drop_remainder,
        return_report=True,
    )
    streamed, report = make_lm_dataset(str(tmp_path / "*.txt*"), tokenizer, **kwargs)
    in_memory, expected_report = make_lm_dataset(DOCUMENTS, tokenizer, **kwargs)
    assert report == expected_report
    assert batches(streamed) == batches(in_memory)


def test_lm_stream_without_bos_starts_with_eos_once():
    # GPT-2's convention: no BOS, one EOS ends a document and starts the next.
    proto = train_sentencepiece(
        DOCUMENTS, vocab_size=60, special_ids=keras_lm.SpecialIds(bos_id=None)
    )
    tokenizer = SentencePieceTokenizer(proto=proto)
    kwargs = dict(sequence_length=7, batch_size=2, shuffle=False, return_report=True)
    documents = tf.data.Dataset.from_tensor_slices(DOCUMENTS[:20])
    streamed, report = make_lm_dataset(documents, tokenizer, **kwargs)
    in_memory, expected_report = make_lm_dataset(DOCUMENTS[:20], tokenizer, **kwargs)
    assert report == expected_report
    assert batches(streamed) == batches(in_memory)
    first = batches(streamed)[0][0]["token_ids"][0]
    assert first[0] == tokenizer.eos_id


def test_lm_stream_too_short_for_a_batch_is_explained(tokenizer, tmp_path):
    path = write_lines(tmp_path / "short.txt", ["the cat", "  "])
    with pytest.raises(ValueError, match="not enough for one batch of batch_size=8"):
        make_lm_dataset(path, tokenizer, sequence_length=8, batch_size=8)


def _tiny_seq2seq(vocabulary_size):
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=vocabulary_size,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
        dropout=0.0,
    )
    keras_lm.training.compile_model(model, warmup_steps=2, jit_compile=False)
    return model


def test_tfds_wmt14_by_name_trains_through_the_stream(tokenizer):
    with tfds.testing.mock_data(num_examples=24):
        dataset = make_translation_dataset(
            "wmt14_translate/fr-en",
            tokenizer,
            batch_size=None,
            max_tokens=128,
            max_length=32,
            bucket_boundaries=(),
            seed=0,
        )
        inputs, _, _ = next(iter(dataset))
        model = _tiny_seq2seq(tokenizer.vocabulary_size())
        history = model.fit(
            dataset, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0
        )
    assert inputs["encoder_token_ids"].shape == (4, 32)
    assert np.isfinite(history.history["loss"][0])


def test_tokenizer_sample_is_bounded_uniform_and_repeatable(tmp_path):
    pairs = [(f"english {i}", f"french {i}") for i in range(3000)]
    write_tsv(tmp_path / "a.tsv", pairs[:1000])
    write_tsv(tmp_path / "b.tsv.gz", pairs[1000:])
    (tmp_path / "c.tsv").write_bytes(b"no tab\n")
    texts = sample_texts(str(tmp_path / "*.tsv*"), max_texts=200, seed=1)
    assert len(texts) == 400  # both sides of 200 lines
    assert texts == sample_texts(str(tmp_path / "*.tsv*"), max_texts=200, seed=1)
    numbers = [int(text.split()[1]) for text in texts[::2]]
    assert numbers == sorted(numbers)  # corpus order
    assert min(numbers) < 500 and max(numbers) > 2500  # drawn from everywhere
    assert texts[1::2] == [f"french {n}" for n in numbers]
    proto = train_sentencepiece(texts, vocab_size=30)
    assert SentencePieceTokenizer(proto=proto).vocabulary_size() == 30


def _windows(dataset):
    # One window per row: the inputs plus the last label.
    return [
        tuple(x) + (y[-1],)
        for inputs, labels, _ in dataset.as_numpy_iterator()
        for x, y in zip(inputs["token_ids"], labels)
    ]


def test_lm_stream_shuffles_every_window_once_per_epoch(tokenizer, tmp_path):
    path = write_lines(tmp_path / "docs.txt", DOCUMENTS)
    kwargs = dict(sequence_length=5, batch_size=3, drop_remainder=False)
    ordered = _windows(make_lm_dataset(path, tokenizer, shuffle=False, **kwargs))
    # Blocks of 16 windows, each shuffled whole, and a last partial block.
    shuffled = make_lm_dataset(path, tokenizer, shuffle_buffer=16, seed=3, **kwargs)
    first, second = _windows(shuffled), _windows(shuffled)
    assert len(ordered) > 40
    for epoch in (first, second):
        assert epoch != ordered
        assert collections.Counter(epoch) == collections.Counter(ordered)
        # Windows move only within their block of 16.
        for block in range(0, len(ordered), 16):
            assert set(epoch[block : block + 16]) == set(ordered[block : block + 16])
    assert first != second  # a new permutation each epoch
    rebuilt = make_lm_dataset(path, tokenizer, shuffle_buffer=16, seed=3, **kwargs)
    assert _windows(rebuilt) == first  # the same seed, the same order
