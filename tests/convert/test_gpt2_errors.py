"""Bad GPT-2 directories fail with errors that name the problem."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import keras_lm.convert  # noqa: E402
from tests.convert.gpt2_helpers import save_tiny_gpt2  # noqa: E402


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2_original")
    save_tiny_gpt2(directory, seed=1)
    return directory


@pytest.fixture
def directory(original, tmp_path):
    return shutil.copytree(original, tmp_path / "gpt2")


def edit_tensors(directory, edit):
    from safetensors.numpy import load_file, save_file

    path = directory / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def edit_json(path, edit):
    value = json.loads(path.read_text(encoding="utf-8"))
    edit(value)
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


def test_missing_tensor_is_named(directory):
    edit_tensors(directory, lambda t: t.pop("transformer.h.1.mlp.c_fc.bias"))
    with pytest.raises(KeyError, match=r"transformer\.h\.1\.mlp\.c_fc\.bias"):
        keras_lm.convert.from_huggingface(directory)


def test_wrong_shape_names_both_shapes(directory):
    def shrink(tensors):
        name = "transformer.h.0.attn.c_attn.weight"
        tensors[name] = np.ascontiguousarray(tensors[name][:, :90])

    edit_tensors(directory, shrink)
    with pytest.raises(ValueError, match=r"\(32, 90\).*\(32, 96\)"):
        keras_lm.convert.from_huggingface(directory)


def test_missing_tokenizer_files_are_named(directory):
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        (directory / name).unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="vocab.json and merges.txt"):
        keras_lm.convert.from_huggingface(directory)


def test_vocabulary_size_must_match_the_weights(directory):
    edit_json(directory / "vocab.json", lambda v: v.update({"extra": len(v)}))
    with pytest.raises(ValueError, match=r"292 tokens .* vocab_size is 291"):
        keras_lm.convert.from_huggingface(directory)


def test_embedding_rows_must_match_the_vocabulary(directory):
    edit_json(directory / "vocab.json", lambda v: v.update({"extra": len(v)}))
    edit_json(directory / "config.json", lambda c: c.update(vocab_size=292))
    with pytest.raises(ValueError, match=r"wte.weight.*\(291, 32\).*\(292, 32\)"):
        keras_lm.convert.from_huggingface(directory)


def test_unsupported_model_type_lists_the_supported_ones(directory):
    edit_json(directory / "config.json", lambda c: c.update(model_type="bert"))
    with pytest.raises(ValueError, match="'bert'.*gpt2"):
        keras_lm.convert.from_huggingface(directory)


def test_unsupported_activation_is_named(directory):
    edit_json(directory / "config.json", lambda c: c.update(activation_function="relu"))
    with pytest.raises(ValueError, match="activation_function='relu'"):
        keras_lm.convert.from_huggingface(directory)


def test_tokenizer_json_alone_is_enough(directory, original):
    from transformers import GPT2Tokenizer

    GPT2Tokenizer.from_pretrained(original).save_pretrained(directory)
    (directory / "vocab.json").unlink()
    (directory / "merges.txt").unlink()
    assert (directory / "tokenizer.json").exists()
    _, tokenizer = keras_lm.convert.from_huggingface(directory)
    _, expected = keras_lm.convert.from_huggingface(original)
    texts = ["the cat", "où  est le serveur"]
    assert tokenizer(texts).to_list() == expected(texts).to_list()
