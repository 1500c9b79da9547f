"""GPT-2 from Hugging Face: logits and greedy output equal transformers'."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import keras_lm.convert  # noqa: E402
from tests.convert.gpt2_helpers import (  # noqa: E402
    hf_generate,
    hf_logits,
    save_tiny_gpt2,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2")
    torch_model = save_tiny_gpt2(directory)
    model, tokenizer = keras_lm.convert.from_huggingface(directory)
    return directory, torch_model, model, tokenizer


def test_converted_model_has_gpt2_architecture_and_special_ids(checkpoint):
    _, torch_model, model, tokenizer = checkpoint
    config = model.get_config()
    assert config["position_encoding"] == "learned"
    assert config["scale_embeddings"] is False
    assert config["activation"] == "gelu_approximate"
    end = torch_model.config.eos_token_id
    assert model.special_ids == tokenizer.special_ids
    assert (model.special_ids.pad_id, model.special_ids.bos_id) == (None, end)
    assert model.special_ids.eos_id == end
    assert tokenizer.vocabulary_size() == model.vocabulary_size


def test_logits_match_transformers_on_a_right_padded_batch(checkpoint):
    _, torch_model, model, _ = checkpoint
    end = torch_model.config.eos_token_id
    rng = np.random.default_rng(0)
    ids = rng.integers(0, end, size=(3, 9)).astype("int32")
    ids[:, 0] = end
    lengths = np.array([9, 5, 2])
    mask = np.arange(9)[None, :] < lengths[:, None]
    ids = np.where(mask, ids, 7)  # padding: any id, masked for transformers
    ours = np.asarray(model({"token_ids": ids}))
    theirs = hf_logits(torch_model, ids, attention_mask=mask.astype("int64"))
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(
            ours[row, :length], theirs[row, :length], atol=1e-4, rtol=0
        )
    # Padding must not be what made them equal: real positions do change.
    assert np.abs(ours[0] - ours[1]).max() > 1e-2


def test_id_zero_is_a_token(checkpoint):
    _, torch_model, model, tokenizer = checkpoint
    assert tokenizer.id_to_token(0) == "!"
    end = torch_model.config.eos_token_id
    ids = np.array([[end, 0, 12, 0, 0, 40]], "int32")
    np.testing.assert_allclose(
        np.asarray(model({"token_ids": ids})),
        hf_logits(torch_model, ids),
        atol=1e-4,
        rtol=0,
    )
    ours = model.generate(ids, max_new_tokens=6)
    np.testing.assert_array_equal(
        ours, hf_generate(torch_model, ids, do_sample=False, max_new_tokens=6)
    )


@pytest.mark.slow
def test_greedy_output_matches_transformers_generate(checkpoint):
    _, torch_model, model, tokenizer = checkpoint
    end = torch_model.config.eos_token_id
    texts = ["the cat", "le chat", "where is"]
    prompts = [[end] + row for row in tokenizer.tokenize(texts).to_list()]
    width = max(map(len, prompts))
    for prompt in prompts:  # one row per call: transformers pads on the left
        ids = np.array([prompt], "int32")
        ours = model.generate(ids, max_new_tokens=12)
        theirs = hf_generate(torch_model, ids, do_sample=False, max_new_tokens=12)
        np.testing.assert_array_equal(ours[:, : theirs.shape[1]], theirs)
        assert (ours[:, theirs.shape[1] :] == end).all()
    # Rows of equal length batch as in transformers.
    batch = np.array([p[:2] for p in prompts], "int32")
    assert width >= 2
    np.testing.assert_array_equal(
        model.generate(batch, max_new_tokens=10),
        hf_generate(torch_model, batch, do_sample=False, max_new_tokens=10),
    )
