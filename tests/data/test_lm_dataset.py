import collections

import numpy as np
import pytest
import sentencepiece as spm
import tensorflow as tf

from keras_lm.data import make_lm_dataset, padding_fraction

DOCUMENTS = [
    "the cat cannot open the file",
    "le chat ne peut pas ouvrir le fichier",
    "",
    "where is the password window",
    "  où est la fenêtre du mot de passe  ",
    "the student already saved the folder",
] * 5


def _expected_stream(tokenizer_proto, documents):
    """The stream computed without the pipeline: BOS + ids + EOS per document."""
    processor = spm.SentencePieceProcessor(model_proto=tokenizer_proto)
    stream = []
    for document in documents:
        if document.strip():
            stream += [processor.bos_id()] + processor.encode(document)
            stream += [processor.eos_id()]
    return stream


def _concat(dataset):
    inputs, labels = [], []
    for batch_inputs, batch_labels, weights in dataset.as_numpy_iterator():
        assert (weights == 1.0).all()
        inputs += batch_inputs["token_ids"].reshape(-1).tolist()
        labels += batch_labels.reshape(-1).tolist()
    return inputs, labels


def test_packing_keeps_every_token(tokenizer, tokenizer_proto):
    sequence_length = 7
    dataset, report = make_lm_dataset(
        DOCUMENTS,
        tokenizer,
        sequence_length=sequence_length,
        batch_size=4,
        shuffle=False,
        drop_remainder=False,
        return_report=True,
    )
    stream = _expected_stream(tokenizer_proto, DOCUMENTS)
    assert report.documents == 25
    assert report.tokens == len(stream)
    assert stream.count(tokenizer.eos_id) == 25
    assert stream.count(tokenizer.bos_id) == 25
    inputs, labels = _concat(dataset)
    covered = report.blocks * sequence_length
    assert len(stream) == covered + 1 + report.dropped_tokens
    assert 0 <= report.dropped_tokens < sequence_length
    assert inputs == stream[:covered]
    assert labels == stream[1 : covered + 1]
    assert padding_fraction(dataset) == 0.0


def test_reads_files_like_strings(tmp_path, tokenizer):
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(DOCUMENTS), encoding="utf-8")
    kwargs = dict(sequence_length=5, batch_size=2, shuffle=False)
    from_file = _concat(make_lm_dataset(path, tokenizer, **kwargs))
    from_strings = _concat(make_lm_dataset(DOCUMENTS, tokenizer, **kwargs))
    assert from_file == from_strings


def test_static_batches_and_counted_batch_remainder(tokenizer):
    dataset, report = make_lm_dataset(
        DOCUMENTS,
        tokenizer,
        sequence_length=8,
        batch_size=5,
        seed=1,
        return_report=True,
    )
    for spec in tf.nest.flatten(dataset.element_spec):
        assert spec.shape.as_list() == [5, 8]
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) * 5 == report.blocks - report.blocks_dropped_per_epoch
    assert report.blocks_dropped_per_epoch == report.blocks % 5


def test_shuffle_permutes_whole_windows(tokenizer):
    kwargs = dict(sequence_length=6, batch_size=1, drop_remainder=False)
    ordered = make_lm_dataset(DOCUMENTS, tokenizer, shuffle=False, **kwargs)
    shuffled = make_lm_dataset(DOCUMENTS, tokenizer, seed=0, **kwargs)

    def windows(dataset):
        return [
            tuple(x["token_ids"][0]) + (y[0, -1],)
            for x, y, _ in dataset.as_numpy_iterator()
        ]

    assert windows(shuffled) != windows(ordered)
    assert collections.Counter(windows(shuffled)) == collections.Counter(
        windows(ordered)
    )
    for x, y, _ in shuffled.as_numpy_iterator():
        np.testing.assert_array_equal(x["token_ids"][0, 1:], y[0, :-1])


@pytest.mark.parametrize(
    "texts, kwargs, message",
    [
        ([], {}, "no non-empty document"),
        (["", "  "], {}, "no non-empty document"),
        (["the cat"], {}, r"not enough for one batch of batch_size=4"),
        (DOCUMENTS, {"sequence_length": 0}, "sequence_length=0"),
        (DOCUMENTS, {"batch_size": -1}, "batch_size=-1"),
    ],
)
def test_bad_input_is_explained(tokenizer, texts, kwargs, message):
    kwargs = {"sequence_length": 8, "batch_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_lm_dataset(texts, tokenizer, **kwargs)
