"""int8 and pruned translators export, load in a process without keras_lm,
and translate exactly as they do in process."""

import json

import numpy as np
import pytest

import keras_lm
from tests.compression.helpers import batch, tiny_seq2seq
from tests.conftest import requires_tensorflow
from tests.export.test_export import LOAD_AND_TRANSLATE, _python

pytestmark = [requires_tensorflow, pytest.mark.slow]

TEXTS = ["open the file", "close the window", "save all files", ""]
OPTIONS = dict(num_beams=2, max_source_length=12)


@pytest.fixture(scope="module")
def tokenizer():
    proto = keras_lm.tokenizers.train_sentencepiece(
        TEXTS[:3] + ["ouvrir le fichier", "fermer la fenêtre"],
        vocab_size=40,
        model_type="bpe",
    )
    return keras_lm.tokenizers.SentencePieceTokenizer(proto)


def _int8(tokenizer):
    model = tiny_seq2seq(seed=4, vocabulary_size=tokenizer.vocabulary_size())
    return keras_lm.compression.quantize(model, "int8")


def _pruned(tokenizer):
    model = tiny_seq2seq(seed=5, vocabulary_size=tokenizer.vocabulary_size())
    inputs, labels, weights = batch(0)
    labels = np.minimum(labels, tokenizer.vocabulary_size() - 1)
    inputs = {
        k: np.minimum(v, tokenizer.vocabulary_size() - 1) for k, v in inputs.items()
    }
    importance = keras_lm.compression.measure_importance(
        model, [(inputs, labels, weights)]
    )
    return keras_lm.compression.prune(
        model, importance, ffn_sparsity=0.5, drop_decoder_layers=1
    )


@pytest.mark.parametrize("make", [_int8, _pruned], ids=["int8", "pruned"])
def test_exported_compressed_translator_loads_without_keras_lm(
    make, tokenizer, tmp_path
):
    model = make(tokenizer)
    path = str(tmp_path / "translator")
    keras_lm.export.export_translator(model, tokenizer, path, **OPTIONS)
    result = json.loads(_python(LOAD_AND_TRANSLATE, path, stdin=json.dumps(TEXTS)))
    expected = keras_lm.generation.translate_ids(model, tokenizer, TEXTS, **OPTIONS)
    special = model.special_ids
    for row, ids in zip(result["ids"], expected):
        assert row[0] == special.start_id
        assert row[1 : len(ids) + 1] == ids
    assert result["text"] == keras_lm.generation.translate_texts(
        model, tokenizer, TEXTS, **OPTIONS
    )


def test_int8_export_stores_int8_kernels(tokenizer, tmp_path):
    import tensorflow as tf

    model = _int8(tokenizer)
    path = str(tmp_path / "translator")
    keras_lm.export.export_translator(model, tokenizer, path, **OPTIONS)
    reader = tf.train.load_checkpoint(f"{path}/variables/variables")
    dtypes = reader.get_variable_to_dtype_map()
    # The module lists the model's variables once under model_variables/
    # (what TF1-style loaders restore); the Keras model tracks them again.
    int8 = [
        name
        for name, dtype in dtypes.items()
        if dtype == tf.int8 and name.startswith("model_variables/")
    ]
    # Every projection kernel and the embedding table (2+2 blocks).
    assert len(int8) == 2 * 6 + 2 * 10 + 1
