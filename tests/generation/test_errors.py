"""Bad arguments are refused before compiling, with the value in the message."""

import numpy as np
import pytest

from keras_lm import generation, models

pytestmark = pytest.mark.multibackend

LM = dict(
    vocabulary_size=20,
    num_layers=1,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    max_sequence_length=10,
)
PROMPTS = [[2, 5, 6]]


@pytest.fixture(scope="module")
def lm():
    return models.TransformerLM(**LM)


@pytest.mark.parametrize(
    "token_ids, options, message",
    [
        ([], {}, "is empty"),
        ([[]], {}, "is empty"),
        ([[2, 5], [0, 0]], {}, "row 1 is empty"),
        ([[2, 0, 5]], {}, "row 0 has padding"),
        ([[2.0, 5.0]], {}, "integer token ids"),
        ([2, 5], {}, r"shape \[batch, length\]"),
        ([[-1, 5]], {}, "non-negative"),
        ([[2] * 11], {}, "length 11, longer than max_sequence_length=10"),
        (PROMPTS, dict(max_new_tokens=8), "max_new_tokens=8 exceeds"),
        (PROMPTS, dict(max_new_tokens=0), "max_new_tokens=0"),
        (PROMPTS, dict(method="nucleus"), "method='nucleus'"),
        (PROMPTS, dict(method="beam", num_beams=0), "num_beams=0"),
        (PROMPTS, dict(method="beam", num_beams=21), "num_beams=21"),
        (PROMPTS, dict(method="sample", top_p=0.0), "top_p=0.0"),
        (PROMPTS, dict(method="sample", top_p=1.5), "top_p=1.5"),
        (PROMPTS, dict(method="sample", top_k=0), "top_k=0"),
        (PROMPTS, dict(method="sample", top_k=2.5), "top_k=2.5"),
        (PROMPTS, dict(method="sample", temperature=0), "temperature=0"),
        (PROMPTS, dict(method="sample", temperature=-1.0), "temperature=-1.0"),
        (PROMPTS, dict(method="sample", seed="a"), "seed='a'"),
        (PROMPTS, dict(top_k=5), "top_k and top_p apply to method='sample'"),
        (PROMPTS, dict(return_all_beams=True), "return_all_beams"),
        (PROMPTS, dict(method="beam", length_penalty=-0.5), "length_penalty=-0.5"),
        (PROMPTS, dict(eos_id=-3), "eos_id=-3"),
        (PROMPTS, dict(decoder_start_id=-1), "decoder_start_id=-1"),
        (PROMPTS, dict(eos_id=20), "eos_id=20 is outside the vocabulary of size 20"),
        ([[2, 20]], {}, "id 20, outside the model's vocabulary of size 20"),
        ([[2, 5]], dict(padding_mask=[[True]]), "padding_mask must have the shape"),
        ([[2, 5]], dict(padding_mask=[[False, True]]), "row 0 has padding before"),
        (PROMPTS, dict(source_length_ratio=1.5), "source_length_ratio=1.5"),
    ],
)
def test_bad_arguments_are_refused(lm, token_ids, options, message):
    with pytest.raises(ValueError, match=message):
        generation.generate(lm, token_ids, **options)


@pytest.mark.parametrize("jit_compile", [True, False])
@pytest.mark.parametrize("bad_id", [20, 999, -1])
def test_ids_outside_the_vocabulary_are_refused_compiled_or_not(
    lm, bad_id, jit_compile
):
    # XLA clamps an out-of-range gather instead of failing, so only a check on
    # the host can stop such ids; it must run whether or not the loop compiles.
    with pytest.raises(ValueError, match=str(bad_id)):
        generation.generate(lm, [[2, bad_id, 3]], jit_compile=jit_compile)


def test_prompt_that_fills_the_model_leaves_no_room(lm):
    with pytest.raises(ValueError, match="leave no room"):
        lm.generate([[2] * 10])


def test_seq2seq_target_must_fit():
    model = models.TransformerSeq2Seq(
        vocabulary_size=20,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=10,
    )
    with pytest.raises(ValueError, match="max_new_tokens=10 does not fit"):
        model.generate(np.array([[5, 6]]), max_new_tokens=10)
    with pytest.raises(ValueError, match="source_length_ratio=0"):
        model.generate(np.array([[5, 6]]), source_length_ratio=0)
