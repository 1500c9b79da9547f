"""A converted Marian model exported as a SavedModel translates without keras_lm."""

import json
import os
import subprocess
import sys

import pytest

from keras_lm import convert
from keras_lm.export import export_translator
from keras_lm.generation import translate_ids, translate_texts
from tests.conftest import requires_tensorflow
from tests.convert.marian_helpers import (
    requires_french_catalogs,
    save_tiny_marian,
    write_tokenizer_files,
)

pytestmark = [requires_tensorflow, requires_french_catalogs, pytest.mark.slow]

SOURCES = [
    "Could not open the file.",
    "Save changes to the document before closing?",
    "",
    ">>fr<< Unknown error",
]

# Runs in a fresh interpreter: TensorFlow and tensorflow_text only.
_LOAD_AND_TRANSLATE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the SentencePiece ops

loaded = tf.saved_model.load(sys.argv[1])
texts = tf.constant(json.loads(sys.argv[2]))
translation = loaded.signatures["serving_default"](text=texts)["translation"]
ids = loaded.signatures["translate_ids"](text=texts)["token_ids"]
print(json.dumps({
    "translation": [t.decode("utf-8") for t in translation.numpy()],
    "token_ids": ids.numpy().tolist(),
    "keras_lm_loaded": any(m.startswith("keras_lm") for m in sys.modules),
}))
"""


@pytest.mark.parametrize("num_beams", [1, 3])
def test_exported_translator_matches_in_process_decoding(tmp_path, num_beams):
    directory = tmp_path / "marian"
    vocabulary_size = write_tokenizer_files(directory)
    save_tiny_marian(directory, vocabulary_size)
    model, tokenizer = convert.from_huggingface(str(directory))
    options = dict(num_beams=num_beams, length_penalty=0.6, max_source_length=32)
    expected_text = translate_texts(model, tokenizer, SOURCES, **options)
    expected_ids = translate_ids(model, tokenizer, SOURCES, **options)
    assert any(expected_text), "nothing to compare: every translation is empty"

    export = str(tmp_path / "export")
    export_translator(model, tokenizer, export, **options)
    assert sorted(os.listdir(os.path.join(export, "assets"))) == [
        "source.spm",
        "target.spm",
        "vocab.json",
    ]
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_TRANSLATE, export, json.dumps(SOURCES)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(tmp_path),
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    exported = json.loads(result.stdout.strip().splitlines()[-1])
    assert not exported["keras_lm_loaded"]
    assert exported["translation"] == expected_text
    special = model.special_ids
    for row, ids in zip(exported["token_ids"], expected_ids):
        assert row[0] == special.start_id
        end = len(ids) + 1
        assert row[1:end] == ids
        assert end == len(row) or row[end] in (special.eos_id, special.pad_id)

    # The caller's tokenizer still works after the export saved a copy.
    assert (
        translate_texts(model, tokenizer, SOURCES[:1], **options) == (expected_text[:1])
    )
