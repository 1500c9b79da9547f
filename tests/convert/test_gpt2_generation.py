"""A converted GPT-2 decodes as transformers does: beam search in
`length_penalty_mode="hf"`, num_return_sequences, suppressed ids, forced EOS
and the defaults of generation_config.json.

transformers' settings used throughout: do_sample=False, num_beams=4,
early_stopping=False (its default) unless a test says otherwise, and
max_new_tokens so that length-capped beams compete at the end. Prompts in a
batch have one length (transformers pads on the left, keras_lm on the right).
"""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import keras_lm.convert  # noqa: E402
from tests.convert.gpt2_helpers import hf_generate, save_tiny_gpt2  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2_generation")
    torch_model = save_tiny_gpt2(directory, seed=4)
    model, _ = keras_lm.convert.from_huggingface(directory)
    end = torch_model.config.eos_token_id
    rng = np.random.default_rng(5)
    prompts = rng.integers(0, end, size=(3, 4)).astype("int32")
    prompts[:, 0] = end
    # An EOS the model often picks, so that beams end at varied lengths and
    # which EOS candidates may finish matters.
    first = model.generate(prompts, max_new_tokens=3)[:, 4:]
    frequent = int(np.bincount(first.ravel()).argmax())
    return directory, torch_model, model, prompts, frequent


def assert_same_output(ours, theirs, fill):
    """transformers crops to the longest output; keras_lm fills to max."""
    assert ours.shape[0] == theirs.shape[0]
    np.testing.assert_array_equal(ours[:, : theirs.shape[1]], theirs)
    assert (ours[:, theirs.shape[1] :] == fill).all()


@pytest.mark.parametrize("alpha", [0.6, 1.0])
@pytest.mark.parametrize("frequent_eos", [False, True])
def test_beam_search_equals_transformers(checkpoint, alpha, frequent_eos):
    """All 4 beams of each row, in transformers' order."""
    _, torch_model, model, prompts, frequent = checkpoint
    eos = frequent if frequent_eos else torch_model.config.eos_token_id
    ours = model.generate(
        prompts,
        method="beam",
        num_beams=4,
        length_penalty=alpha,
        length_penalty_mode="hf",
        max_new_tokens=9,
        eos_id=eos,
        num_return_sequences=4,
    )
    theirs = hf_generate(
        torch_model,
        prompts,
        do_sample=False,
        num_beams=4,
        length_penalty=alpha,
        max_new_tokens=9,
        eos_token_id=eos,
        num_return_sequences=4,
    )
    assert_same_output(ours, theirs, eos)
    if frequent_eos and alpha < 1.0:
        # (With alpha = 1 the beams cut at the limit win on this model.)
        assert (theirs == eos)[:, 4:].any(), "no beam ended: EOS not exercised"


def test_gnmt_stays_the_default(checkpoint):
    _, _, model, prompts, frequent = checkpoint
    options = dict(method="beam", num_beams=4, max_new_tokens=9, eos_id=frequent)
    default = model.generate(prompts, return_all_beams=True, **options)
    gnmt = model.generate(
        prompts, length_penalty_mode="gnmt", return_all_beams=True, **options
    )
    hf = model.generate(
        prompts, length_penalty_mode="hf", return_all_beams=True, **options
    )
    np.testing.assert_array_equal(default[0], gnmt[0])
    np.testing.assert_allclose(default[1], gnmt[1])
    # Same beams can score differently: ((5 + |Y|) / 6) ** 0.6 vs |Y| ** 0.6.
    assert not np.allclose(gnmt[1], hf[1])


def test_beam_num_return_sequences_and_early_stopping(checkpoint):
    _, torch_model, model, prompts, frequent = checkpoint
    options = dict(num_beams=4, length_penalty=1.0, max_new_tokens=8)
    ours = model.generate(
        prompts,
        method="beam",
        length_penalty_mode="hf",
        num_return_sequences=3,
        early_stopping=True,
        eos_id=frequent,
        **options,
    )
    theirs = hf_generate(
        torch_model,
        prompts,
        do_sample=False,
        num_return_sequences=3,
        early_stopping=True,
        eos_token_id=frequent,
        **options,
    )
    assert ours.shape[0] == 9  # [B * N, L], row i * N + j
    assert_same_output(ours, theirs, frequent)


def test_sampling_num_return_sequences_shape_and_order(checkpoint):
    _, torch_model, model, prompts, _ = checkpoint
    ours = model.generate(
        prompts, method="sample", num_return_sequences=3, max_new_tokens=6, seed=3
    )
    theirs = hf_generate(
        torch_model, prompts, do_sample=True, num_return_sequences=3, max_new_tokens=6
    )
    assert ours.shape == (9, 10)
    # Row i * N + j continues prompt i, as transformers orders them.
    np.testing.assert_array_equal(ours[:, :4], theirs[:, :4])
    np.testing.assert_array_equal(ours[:, :4], np.repeat(prompts, 3, axis=0))
    # The N draws of one prompt are different samples.
    assert len({tuple(row) for row in ours[:3, 4:]}) > 1


def test_generation_config_json_sets_the_defaults(checkpoint, tmp_path):
    """Suppressed ids, forced EOS, beams, length penalty and max_length from
    generation_config.json: generate() without options equals transformers'
    generate() without options."""
    from transformers import GenerationConfig

    directory, torch_model, _, prompts, frequent = checkpoint
    import shutil

    shutil.copytree(directory, tmp_path / "gpt2", dirs_exist_ok=True)
    end = torch_model.config.eos_token_id
    greedy = hf_generate(torch_model, prompts, do_sample=False, max_new_tokens=6)
    suppressed = sorted({int(t) for t in greedy[:, 4:].ravel()} - {end})[:3]
    config = GenerationConfig(
        bos_token_id=end,
        eos_token_id=end,
        num_beams=4,
        length_penalty=0.6,
        max_length=11,
        bad_words_ids=[[t] for t in suppressed],
        forced_eos_token_id=end,
    )
    config.save_pretrained(tmp_path / "gpt2")
    model, _ = keras_lm.convert.from_huggingface(tmp_path / "gpt2")
    assert model.generation_config["suppress_ids"] == suppressed
    assert model.generation_config["forced_eos_id"] == end
    torch_model.generation_config = config
    ours = model.generate(prompts)
    theirs = hf_generate(torch_model, prompts)
    assert_same_output(ours, theirs, end)
    assert not np.isin(ours[:, 4:], suppressed).any()
    assert (ours[:, 10] == end).all()  # forced at max_length
    # Greedy with the same suppression and forced EOS.
    ours = model.generate(prompts, method="greedy")
    theirs = hf_generate(torch_model, prompts, num_beams=1)
    assert_same_output(ours, theirs, end)
