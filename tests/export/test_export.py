import json
import os
import subprocess
import sys

import pytest

from tests.conftest import requires_tensorflow

pytestmark = [requires_tensorflow, pytest.mark.slow]

SENTENCES = [
    "open the file",
    "save the file",
    "close the window",
    "open a new window",
    "delete the file",
    "print the page",
    "quit the program",
    "save all files",
    "the file is open",
    "the window is closed",
    "select a file",
    "copy the text",
]
FRENCH = [
    "ouvrir le fichier",
    "enregistrer le fichier",
    "fermer la fenêtre",
    "ouvrir une nouvelle fenêtre",
    "supprimer le fichier",
    "imprimer la page",
    "quitter le programme",
    "enregistrer tous les fichiers",
    "le fichier est ouvert",
    "la fenêtre est fermée",
    "sélectionner un fichier",
    "copier le texte",
]


def _python(code, *args, stdin=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import keras

    import keras_lm

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("export")
    pairs = list(zip(SENTENCES, FRENCH))
    proto = keras_lm.tokenizers.train_sentencepiece(
        SENTENCES + FRENCH, vocab_size=60, model_type="bpe"
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=24,
        dropout=0.0,
    )
    keras_lm.training.compile_model(model, learning_rate=3e-3, label_smoothing=0.0)
    data = keras_lm.data.make_translation_dataset(
        pairs, tokenizer, batch_size=12, max_length=24, seed=0
    ).repeat()
    model.fit(data, steps_per_epoch=150, epochs=1, verbose=0)
    path = str(root / "translator")
    keras_lm.export.export_translator(model, tokenizer, path, num_beams=3)
    return model, tokenizer, path


# keras_lm and keras_hub are made unimportable, as on a serving machine that
# has only TensorFlow and tensorflow_text. (Keras itself cannot be blocked:
# tensorflow_text 2.21 builds tf.keras layers when it is imported.)
BLOCK_LIBRARIES = """
import importlib.abc, sys
class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras_lm", "keras_hub"):
            return None
        find = getattr(self.inner, "find_spec", None)
        return find(name, path, target) if find else None
sys.meta_path[:] = [_Hide(finder) for finder in sys.meta_path]
"""

LOAD_AND_TRANSLATE = (
    BLOCK_LIBRARIES
    + """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops
loaded = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.stdin.read())
out = loaded.signatures["serving_default"](text=tf.constant(texts))["translation"]
ids = loaded.signatures["translate_ids"](text=tf.constant(texts))["token_ids"]
assert not any(m.split(".")[0] in ("keras_lm", "keras_hub") for m in sys.modules)
print(json.dumps({"text": [t.decode("utf-8") for t in out.numpy()],
                  "ids": ids.numpy().tolist()}))
"""
)


def test_fresh_process_with_tensorflow_only_translates_like_the_model(trained):
    import keras_lm

    model, tokenizer, path = trained
    texts = ["open the file", "close the window", "save all files"]
    result = json.loads(_python(LOAD_AND_TRANSLATE, path, stdin=json.dumps(texts)))
    # In process through the public API, with the export's settings.
    options = dict(num_beams=3, max_source_length=24)
    expected_ids = keras_lm.generation.translate_ids(model, tokenizer, texts, **options)
    special = model.special_ids
    for row, expected in zip(result["ids"], expected_ids):
        assert row[0] == special.start_id
        assert row[1 : len(expected) + 1] == expected
        assert row[len(expected) + 1] == special.eos_id
        assert set(row[len(expected) + 2 :]) <= {special.pad_id}
    assert result["text"] == keras_lm.generation.translate_texts(
        model, tokenizer, texts, **options
    )
    # The model learned something: most training sentences come back right.
    assert (
        sum(
            a == b
            for a, b in zip(
                result["text"],
                [
                    "ouvrir le fichier",
                    "fermer la fenêtre",
                    "enregistrer tous les fichiers",
                ],
            )
        )
        >= 2
    )


def test_hostile_inputs_return_strings(trained):
    _, _, path = trained
    texts = ["", "a" * 5000, "open the file " * 40, "закрыть окно 文件", "ok"]
    result = json.loads(_python(LOAD_AND_TRANSLATE, path, stdin=json.dumps(texts)))
    assert len(result["text"]) == len(texts)
    assert all(isinstance(t, str) for t in result["text"])


def test_saved_model_cli_shows_and_runs_the_signature(trained):
    _, _, path = trained
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", path, "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    serving = shown.stdout.split("signature_def['serving_default']")[1].split(
        "signature_def["
    )[0]
    assert "inputs['text'] tensor_info:\n        dtype: DT_STRING" in serving
    assert "outputs['translation'] tensor_info:\n        dtype: DT_STRING" in serving
    # saved_model_cli itself, with the SentencePiece ops registered first.
    run = _python(
        BLOCK_LIBRARIES + "import sys, tensorflow_text\n"
        "from tensorflow.python.tools import saved_model_cli\n"
        "sys.argv = ['saved_model_cli'] + sys.argv[1:]\n"
        "saved_model_cli.main()",
        "run",
        "--dir",
        path,
        "--tag_set",
        "serve",
        "--signature_def",
        "serving_default",
        "--input_exprs",
        "text=['open the file']",
    )
    assert "translation" in run and "b'" in run


def test_cli_translates_arguments_and_stdin(trained):
    _, _, path = trained
    code = "from keras_lm.cli import main; main()"
    from_args = _python(code, "translate", "--model", path, "open the file")
    from_stdin = _python(code, "translate", "--model", path, stdin="open the file\n")
    assert from_args.strip() and from_args == from_stdin


def test_load_exported_refuses_missing_and_foreign_directories(tmp_path):
    import keras_lm

    with pytest.raises(FileNotFoundError, match="No SavedModel directory"):
        keras_lm.export.load_exported(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no saved_model.pb"):
        keras_lm.export.load_exported(str(tmp_path))


def test_export_checks_model_kind_and_vocabulary(trained):
    import keras_lm

    model, tokenizer, _ = trained
    with pytest.raises(ValueError, match="export_translator"):
        keras_lm.export.export_generator(model, tokenizer, "/tmp/unused")
    lm = keras_lm.models.TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size() + 5,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    with pytest.raises(ValueError, match=str(tokenizer.vocabulary_size() + 5)):
        keras_lm.export.export_generator(lm, tokenizer, "/tmp/unused")
