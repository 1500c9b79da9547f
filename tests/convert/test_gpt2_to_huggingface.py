"""keras_lm -> Hugging Face GPT-2 directory -> transformers, and back."""

import json

import keras
import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import keras_lm.convert  # noqa: E402
from keras_lm.models import TransformerLM  # noqa: E402
from keras_lm.tokenizers.byte_pair import BytePairTokenizer  # noqa: E402
from tests.convert.gpt2_helpers import (  # noqa: E402
    hf_logits,
    save_tiny_gpt2,
    synthetic_texts,
    train_bpe,
)

GPT2_LAYOUT = dict(
    position_encoding="learned",
    normalize_first=True,
    activation="gelu_approximate",
    scale_embeddings=False,
)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bpe")
    train_bpe(directory, synthetic_texts(), vocab_size=290)
    return BytePairTokenizer(directory / "vocab.json", directory / "merges.txt")


def keras_gpt2(tokenizer, **options):
    settings = dict(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        intermediate_dim=48,
        max_sequence_length=24,
        special_ids=tokenizer.special_ids,
        generation_config={"method": "beam", "num_beams": 3, "length_penalty": 0.8},
        **GPT2_LAYOUT,
    )
    settings.update(options)
    model = TransformerLM(**settings)
    # Random norms and biases, so a converter that drops them fails.
    rng = np.random.default_rng(0)
    model.set_weights(
        [w + rng.normal(0, 0.2, w.shape).astype("float32") for w in model.get_weights()]
    )
    return model


@pytest.mark.slow
def test_transformers_loads_the_same_model_and_tokenizer(tokenizer, tmp_path):
    from transformers import GPT2LMHeadModel, GPT2Tokenizer

    model = keras_gpt2(tokenizer)
    keras_lm.convert.to_huggingface(model, tokenizer, tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "vocab.json",
        "merges.txt",
    } <= files
    torch_model = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = np.array([[tokenizer.special_ids.bos_id, 0, 5, 17, 99, 3, 250]], "int32")
    np.testing.assert_allclose(
        np.asarray(model({"token_ids": ids})), hf_logits(torch_model, ids), atol=1e-4
    )
    theirs = GPT2Tokenizer.from_pretrained(tmp_path)
    texts = ["where is the file", "l'élève  a déjà"]
    assert tokenizer(texts).to_list() == [theirs(t)["input_ids"] for t in texts]
    generation = json.loads((tmp_path / "generation_config.json").read_text())
    assert generation["num_beams"] == 3 and generation["length_penalty"] == 0.8

    again, again_tokenizer = keras_lm.convert.from_huggingface(tmp_path)
    for ours, theirs_weight in zip(model.weights, again.weights):
        assert ours.path == theirs_weight.path
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs_weight)
        )
    assert again_tokenizer(texts).to_list() == tokenizer(texts).to_list()
    assert again.special_ids == model.special_ids
    assert again.generation_config["num_beams"] == 3


@pytest.mark.slow
def test_huggingface_round_trip_writes_identical_tensors(tmp_path):
    from safetensors.numpy import load_file

    save_tiny_gpt2(tmp_path / "original", seed=2)
    model, tokenizer = keras_lm.convert.from_huggingface(tmp_path / "original")
    keras_lm.convert.to_huggingface(model, tokenizer, tmp_path / "again")
    original = load_file(tmp_path / "original" / "model.safetensors")
    again = load_file(tmp_path / "again" / "model.safetensors")
    # The tied lm_head is not stored; attention-mask buffers are not weights.
    weights = {k: v for k, v in original.items() if k.endswith(("weight", "bias"))}
    weights.pop("lm_head.weight", None)
    assert sorted(weights) == sorted(again)
    for name, value in weights.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)


@pytest.mark.parametrize(
    "option, value",
    [
        ("position_encoding", "rotary"),
        ("scale_embeddings", True),
        ("normalize_first", False),
        ("activation", "relu"),
        ("normalization", "rms_norm"),
        ("num_kv_heads", 2),
    ],
)
def test_architectures_gpt2_cannot_hold_are_refused_by_name(
    tokenizer, tmp_path, option, value
):
    model = keras_gpt2(tokenizer, **{option: value})
    with pytest.raises(ValueError, match=f"{option}={value!r}"):
        keras_lm.convert.to_huggingface(model, tokenizer, tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_mismatched_tokenizer_is_refused(tokenizer, tmp_path):
    model = keras_gpt2(tokenizer, vocabulary_size=tokenizer.vocabulary_size() + 1)
    with pytest.raises(ValueError, match="must match"):
        keras_lm.convert.to_huggingface(model, tokenizer, tmp_path)
    with pytest.raises(ValueError, match="BytePairTokenizer"):
        keras_lm.convert.to_huggingface(keras_gpt2(tokenizer), object(), tmp_path)
