"""A converted GPT-2 exported with export_generator: its BPE tokenizer runs in
the SavedModel, which a process without keras_lm loads and which returns what
in-process generate() does."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import keras_lm.convert  # noqa: E402
from keras_lm.export import export_generator  # noqa: E402
from keras_lm.generation import encode_prompts  # noqa: E402
from tests.conftest import requires_tensorflow  # noqa: E402
from tests.convert.gpt2_helpers import save_tiny_gpt2  # noqa: E402
from tests.export.test_export import BLOCK_LIBRARIES, _python  # noqa: E402

pytestmark = [requires_tensorflow, pytest.mark.slow]

LOAD_AND_GENERATE = (
    BLOCK_LIBRARIES
    + """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the regex split op
loaded = tf.saved_model.load(sys.argv[1])
prompts = tf.constant(json.loads(sys.stdin.read()))
out = loaded.signatures["greedy"](prompt=prompts)
assert not any(m.split(".")[0] in ("keras_lm", "keras_hub") for m in sys.modules)
print(json.dumps({"text": [t.decode("utf-8") for t in out["text"].numpy()],
                  "ids": out["token_ids"].numpy().tolist()}))
"""
)


def test_exported_generator_returns_in_process_greedy_output(tmp_path, capsys):
    save_tiny_gpt2(tmp_path / "gpt2", seed=6)
    model, tokenizer = keras_lm.convert.from_huggingface(tmp_path / "gpt2")
    path = export_generator(
        model,
        tokenizer,
        str(tmp_path / "export"),
        max_new_tokens=8,
        max_prompt_length=8,
    )
    prompts = ["the cat", "où est le fichier", ""]
    result = json.loads(_python(LOAD_AND_GENERATE, path, stdin=json.dumps(prompts)))

    rows = encode_prompts(tokenizer, prompts, max_prompt_length=8)
    end = model.special_ids.eos_id
    ids = np.full((len(rows), 8), end, "int32")
    mask = np.zeros(ids.shape, bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = True
    expected = model.generate(ids, max_new_tokens=8, padding_mask=mask)
    np.testing.assert_array_equal(np.array(result["ids"]), expected)
    continuations = [expected[i, len(row) :] for i, row in enumerate(rows)]
    texts = [tokenizer.detokenize(c).numpy().decode() for c in continuations]
    assert result["text"] == texts
    assert any(texts)

    # `keras-lm generate` serves the export.
    from keras_lm import cli

    cli.main(["generate", "--model", path, "--greedy", *prompts[:2]])
    assert capsys.readouterr().out.split("\n")[:2] == texts[:2]
