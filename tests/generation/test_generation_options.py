"""Suppressed ids, forced EOS, num_return_sequences, max_length and a
model's generation_config defaults, on hand-made models."""

import numpy as np
import pytest

from keras_lm import generation
from keras_lm.generation.defaults import from_huggingface_generation_config
from keras_lm.models import TransformerLM
from tests.generation.stubs import BigramLM

BOS, EOS, A, B, C = 2, 3, 4, 5, 6
# A chain that prefers A, then loops on C and never ends by itself.
CHAIN = {
    BOS: {A: 0.6, B: 0.3, C: 0.1},
    A: {C: 0.7, B: 0.2, EOS: 0.1},
    B: {C: 0.8, EOS: 0.2},
    C: {C: 0.9, A: 0.1},
}


@pytest.fixture(scope="module")
def model():
    return BigramLM(CHAIN, vocabulary_size=8, max_sequence_length=10)


@pytest.mark.multibackend
@pytest.mark.parametrize(
    "options",
    [
        dict(method="greedy"),
        dict(method="beam", num_beams=2),
        dict(method="beam", num_beams=2, length_penalty_mode="hf"),
        dict(method="sample", seed=0),
    ],
)
def test_suppressed_ids_are_never_generated(model, options):
    free = generation.generate(model, [[BOS]], max_new_tokens=4, **options)
    assert A in free[0]
    out = generation.generate(
        model, [[BOS]], max_new_tokens=4, suppress_ids=[A], **options
    )
    assert A not in out[0, 1:]
    if options["method"] == "greedy":
        assert list(out[0]) == [BOS, B, C, C, C]


@pytest.mark.multibackend
@pytest.mark.parametrize(
    "options",
    [
        dict(method="greedy"),
        dict(method="beam", num_beams=2),
        dict(method="beam", num_beams=2, length_penalty_mode="hf"),
        dict(method="sample", seed=1),
    ],
)
def test_forced_eos_ends_every_row_at_its_limit(model, options):
    free = generation.generate(model, [[BOS], [C]], max_new_tokens=3, **options)
    assert (free[:, -1] != EOS).any()
    out = generation.generate(
        model, [[BOS], [C]], max_new_tokens=3, forced_eos_id=EOS, **options
    )
    assert (out[:, -1] == EOS).all()
    if options["method"] == "greedy":
        assert list(out[0]) == [BOS, A, C, EOS]


@pytest.mark.multibackend
def test_beam_num_return_sequences_are_the_best_beams_in_row_order(model):
    prompts = [[BOS], [C]]
    every, _ = generation.generate(
        model,
        prompts,
        max_new_tokens=3,
        method="beam",
        num_beams=3,
        return_all_beams=True,
    )
    out = generation.generate(
        model,
        prompts,
        max_new_tokens=3,
        method="beam",
        num_beams=3,
        num_return_sequences=2,
    )
    assert out.shape == (4, 4)
    np.testing.assert_array_equal(out, every[:, :2].reshape(4, 4))


@pytest.mark.multibackend
def test_sampling_num_return_sequences_repeat_each_prompt(model):
    out = generation.generate(
        model,
        [[BOS], [C]],
        max_new_tokens=5,
        method="sample",
        seed=3,
        num_return_sequences=4,
    )
    assert out.shape == (8, 6)
    assert list(out[:, 0]) == [BOS] * 4 + [C] * 4
    assert len({tuple(row) for row in out[:4]}) > 1


def test_max_length_counts_the_prompt(model):
    out = generation.generate(model, [[BOS, A]], max_length=5)
    assert out.shape == (1, 5)
    # An explicit max_new_tokens wins over max_length.
    assert generation.generate(model, [[BOS, A]], max_new_tokens=2).shape == (1, 4)
    with pytest.raises(ValueError, match="max_length=2"):
        generation.generate(model, [[BOS, A]], max_length=2)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_return_sequences=2), "greedy"),
        (dict(method="beam", num_beams=2, num_return_sequences=3), "exceeds"),
        (dict(method="beam", num_return_sequences=2, return_all_beams=True), "both"),
        (dict(suppress_ids=[8]), "suppress_ids has id 8"),
        (dict(forced_eos_id=-1), "forced_eos_id"),
        (dict(forced_eos_id=EOS, suppress_ids=[EOS]), "also in suppress_ids"),
        (dict(method="beam", length_penalty_mode="wu"), "length_penalty_mode"),
        (dict(method="beam", early_stopping=True), "early_stopping"),
        (dict(method="beam", early_stopping="never"), "'never'"),
    ],
)
def test_bad_options_are_clear_errors(model, options, message):
    with pytest.raises(ValueError, match=message):
        generation.generate(model, [[BOS]], max_new_tokens=2, **options)


def test_model_generation_config_sets_defaults_that_arguments_override():
    config = {"method": "beam", "num_beams": 2, "max_new_tokens": 3}
    options = dict(
        vocabulary_size=20,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=12,
    )
    model = TransformerLM(generation_config=config, **options)
    plain = TransformerLM(**options)
    plain.set_weights(model.get_weights())
    prompts = np.array([[2, 7, 9]], "int32")
    np.testing.assert_array_equal(
        model.generate(prompts),
        plain.generate(prompts, method="beam", num_beams=2, max_new_tokens=3),
    )
    assert model.generate(prompts, max_new_tokens=5).shape == (1, 8)
    assert model.generate(prompts, max_length=5).shape == (1, 5)
    np.testing.assert_array_equal(
        model.generate(prompts, method="greedy"),
        plain.generate(prompts, max_new_tokens=3),
    )
    # Sampling options of the config do not apply to another method.
    for name, value in dict(method="sample", top_k=5, num_return_sequences=2).items():
        model.generation_config[name] = value
    assert model.generate(prompts, method="greedy").shape == (1, 6)
    assert model.generate(prompts, seed=1).shape == (2, 6)
    model.generation_config["method"] = "beam"
    model.generation_config["num_return_sequences"] = 1
    # A checkpoint's max_length beyond the model's room is cut to the room;
    # the same length asked for explicitly is an error.
    model.generation_config["max_length"] = 512
    del model.generation_config["max_new_tokens"]
    assert model.generate(prompts).shape == (1, 12)
    with pytest.raises(ValueError, match="max_sequence_length"):
        model.generate(prompts, max_length=512)


def test_huggingface_generation_config_translation():
    config = from_huggingface_generation_config(
        {
            "num_beams": 6,
            "max_length": 512,
            "bad_words_ids": [[58100]],
            "forced_eos_token_id": 0,
            "eos_token_id": 0,
        }
    )
    assert config == {
        "method": "beam",
        "num_beams": 6,
        "length_penalty": 1.0,
        "length_penalty_mode": "hf",
        "early_stopping": False,
        "max_length": 512,
        "suppress_ids": [58100],
        "forced_eos_id": 0,
    }
    sample = from_huggingface_generation_config({"do_sample": True}, 30)
    assert (sample["method"], sample["top_k"]) == ("sample", 30)
    with pytest.warns(UserWarning, match="more than one token"):
        from_huggingface_generation_config({"bad_words_ids": [[1, 2]]})
