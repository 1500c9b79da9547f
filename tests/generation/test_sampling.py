"""Seeded sampling: reproducible, and never outside the top-k / nucleus set."""

import numpy as np
import pytest

from keras_lm import generation
from tests.generation.stubs import BigramLM

pytestmark = pytest.mark.multibackend

BOS = 2
# One step from BOS: a fixed distribution over ids 3..9 (pad, unk, bos: 0).
PROBABILITIES = {3: 0.05, 4: 0.3, 5: 0.2, 6: 0.15, 7: 0.1, 8: 0.1, 9: 0.1}
DRAWS = 2000


@pytest.fixture(scope="module")
def model():
    table = {BOS: PROBABILITIES, **{t: PROBABILITIES for t in PROBABILITIES}}
    return BigramLM(table, vocabulary_size=10, max_sequence_length=8)


def _draw(model, **options):
    """DRAWS independent one-token samples (one per row)."""
    prompts = np.full((DRAWS, 1), BOS, "int32")
    outputs = generation.generate(
        model, prompts, max_new_tokens=1, method="sample", seed=7, **options
    )
    return outputs[:, 1]


def _frequencies(tokens):
    return {t: float(np.mean(tokens == t)) for t in np.unique(tokens)}


def _assert_follows(tokens, distribution):
    """Support is exactly the allowed set; frequencies within 4 sigma."""
    total = sum(distribution.values())
    assert set(np.unique(tokens)) == set(distribution), _frequencies(tokens)
    for token, weight in distribution.items():
        expected = weight / total
        sigma = np.sqrt(expected * (1 - expected) / len(tokens))
        assert abs(np.mean(tokens == token) - expected) < 4 * sigma + 1e-3


@pytest.mark.parametrize(
    "options, allowed",
    [
        (dict(), PROBABILITIES),
        (dict(top_k=3), {4: 0.3, 5: 0.2, 6: 0.15}),
        # Mass before 6 is 0.5 >= 0.45: the nucleus is {4, 5}.
        (dict(top_p=0.45), {4: 0.3, 5: 0.2}),
        # top-k first (4, 5, 6, 7: 0.75), then the nucleus of 0.5 of that.
        (dict(top_k=4, top_p=0.5), {4: 0.3, 5: 0.2}),
        (dict(top_p=1.0), PROBABILITIES),
    ],
    ids=["full", "top_k", "top_p", "top_k_top_p", "top_p_one"],
)
def test_samples_follow_the_renormalized_distribution(model, options, allowed):
    _assert_follows(_draw(model, **options), allowed)


def test_temperature_flattens_the_distribution(model):
    temperature = 2.0
    tempered = {t: p ** (1 / temperature) for t, p in PROBABILITIES.items()}
    _assert_follows(_draw(model, temperature=temperature), tempered)


def test_same_seed_same_samples_other_seed_other_samples(model):
    prompts = np.full((4, 1), BOS, "int32")

    def run(seed):
        return generation.generate(
            model, prompts, max_new_tokens=6, method="sample", seed=seed, eos_id=None
        )

    first, again, other = run(11), run(11), run(12)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Steps and rows draw fresh numbers: not one token repeated everywhere.
    assert len(np.unique(first[:, 1:])) > 2
