import json

import numpy as np
import pytest

from tests.conftest import requires_tensorflow
from tests.export.test_export import BLOCK_LIBRARIES, _python

pytestmark = [requires_tensorflow, pytest.mark.slow]

DOCUMENTS = [
    "the file is open",
    "the window is closed",
    "open the file now",
    "close the window now",
    "save the file",
    "the page is printed",
] * 20

LOAD_AND_GENERATE = (
    BLOCK_LIBRARIES
    + """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops
loaded = tf.saved_model.load(sys.argv[1])
prompts = tf.constant(json.loads(sys.stdin.read()))
def sample(seed):
    out = loaded.signatures["sample"](prompt=prompts, temperature=tf.constant(1.0),
                                      top_p=tf.constant(0.9),
                                      seed=tf.constant(seed, tf.int64))["text"]
    return [t.decode("utf-8") for t in out.numpy()]
greedy = loaded.signatures["greedy"](prompt=prompts)["text"]
default = loaded.signatures["serving_default"](prompt=prompts)["text"]
print(json.dumps({"greedy": [t.decode("utf-8") for t in greedy.numpy()],
                  "default": [t.decode("utf-8") for t in default.numpy()],
                  "seed1": sample(1), "seed1_again": sample(1), "seed2": sample(2)}))
"""
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    import keras_lm

    keras.utils.set_random_seed(0)
    proto = keras_lm.tokenizers.train_sentencepiece(DOCUMENTS, vocab_size=28)
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    model = keras_lm.models.TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=32,
    )
    keras_lm.training.compile_model(model, learning_rate=3e-3, label_smoothing=0.0)
    data = keras_lm.data.make_lm_dataset(
        DOCUMENTS, tokenizer, sequence_length=16, batch_size=8, seed=0
    )
    model.fit(data.repeat(), steps_per_epoch=60, epochs=1, verbose=0)
    path = str(tmp_path_factory.mktemp("generator") / "lm")
    keras_lm.export.export_generator(
        model, tokenizer, path, max_new_tokens=8, max_prompt_length=12
    )
    return model, tokenizer, path


def test_exported_generator_matches_in_process_greedy_and_is_seeded(exported):
    import keras_lm

    model, tokenizer, path = exported
    prompts = ["the file", "close the", ""]
    result = json.loads(_python(LOAD_AND_GENERATE, path, stdin=json.dumps(prompts)))

    # In process: the public prompt encoding (start-of-text first) and
    # generate; the export returns the continuation only.
    expected = []
    for ids in keras_lm.generation.encode_prompts(tokenizer, prompts, 12):
        out = model.generate(np.array([ids], "int32"), max_new_tokens=8)
        expected.append(tokenizer.detokenize(out[0, len(ids) :]).numpy().decode())
    assert result["greedy"] == expected
    assert result["seed1"] == result["seed1_again"]
    assert len(result["default"]) == len(prompts)
    assert all(isinstance(t, str) for t in result["seed2"])


def test_cli_generate(exported):
    _, _, path = exported
    code = "from keras_lm.cli import main; main()"
    once = _python(code, "generate", "--model", path, "--seed", "3", "the file")
    again = _python(code, "generate", "--model", path, "--seed", "3", "the file")
    greedy = _python(code, "generate", "--model", path, "--greedy", "the file")
    assert once == again and once.endswith("\n") and greedy.endswith("\n")


def test_cli_refuses_the_wrong_kind_of_export(exported):
    import subprocess
    import sys

    _, _, path = exported
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from keras_lm.cli import main; main()",
            "translate",
            "--model",
            path,
            "hello",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "not a translator export" in result.stderr
