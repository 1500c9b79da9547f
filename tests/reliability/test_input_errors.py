"""Bad input to the public entry points fails early, naming the value and fix.

Only cases no other test covers (see tests/*/ for the rest); every message
here is listed in docs/errors.md.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_lm import export, models, training
from keras_lm.tokenizers import SentencePieceTokenizer

V = 40
IDS = np.random.default_rng(0).integers(1, V, (8, 6)).astype("int32")


def build_lm():
    return models.TransformerLM(
        vocabulary_size=V,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=8,
    )


def batches(inputs, *rest):
    return tf.data.Dataset.from_tensor_slices((inputs, *rest)).batch(4)


@pytest.mark.parametrize(
    "train_data, message",
    [
        (({"token_ids": IDS}, IDS), r"must be a tf\.data\.Dataset.*Received: tuple"),
        (
            tf.data.Dataset.from_tensor_slices({"token_ids": IDS}).batch(4),
            r"\(inputs, labels\).*Received elements of type dict",
        ),
        (
            batches({"token_ids": IDS + V}, IDS),
            r"token_ids holds id \d+, outside the model's vocabulary of size 40"
            r".*vocabulary_size=tokenizer\.vocabulary_size\(\)",
        ),
        (
            batches({"token_ids": IDS}, IDS + V),
            r"labels holds id \d+, outside the model's vocabulary",
        ),
        (
            batches({"token_ids": IDS}, IDS[:, :5]),
            r"labels have shape \(4, 5\).*shape \(4, 6\).*labels = ids\[:, 1:\]",
        ),
        (
            batches({"token_ids": IDS}, IDS).filter(lambda x, y: False),
            "yields no batch",
        ),
    ],
    ids=["numpy", "no-labels", "ids-vocabulary", "label-vocabulary", "shift", "empty"],
)
def test_train_refuses_bad_data_before_compiling(train_data, message):
    with pytest.raises(ValueError, match=message):
        training.train(
            build_lm,
            train_data,
            compile_options={"learning_rate": 1e-3, "jit_compile": False},
            verbose=0,
        )


def test_train_refuses_bad_validation_data():
    with pytest.raises(ValueError, match="validation_data must be a tf.data"):
        training.train(build_lm, batches({"token_ids": IDS}, IDS), [IDS], verbose=0)


@pytest.mark.parametrize(
    "proto, message",
    [(b"", r"0 bytes: it is empty"), (b"not a model", r"not a SentencePiece model")],
)
def test_tokenizer_refuses_bytes_that_are_no_model(proto, message):
    with pytest.raises(ValueError, match=message):
        SentencePieceTokenizer(proto)


def test_tokenizer_names_a_file_that_is_no_model(tmp_path):
    path = tmp_path / "vocab.model"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match=r"vocab\.model' is not a SentencePiece"):
        SentencePieceTokenizer(str(path))


class _Echo(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        return text


@pytest.mark.parametrize("version", [None, "keras_lm.export/0"])
def test_load_exported_refuses_other_formats(tmp_path, version):
    module = _Echo()
    if version is not None:
        module.format_version = tf.Variable(version, trainable=False)
    tf.saved_model.save(module, str(tmp_path))
    with pytest.raises(ValueError, match=f"format {version!r}, expected"):
        export.load_exported(str(tmp_path))


def test_load_exported_refuses_a_damaged_saved_model(tmp_path):
    tf.saved_model.save(_Echo(), str(tmp_path))
    with open(os.path.join(tmp_path, "saved_model.pb"), "wb") as f:
        f.write(b"truncated")
    with pytest.raises(ValueError, match="damaged SavedModel.*Export it again"):
        export.load_exported(str(tmp_path))
