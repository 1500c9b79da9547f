"""Beam search on a hand-made model whose best sequence greedy misses."""

import math

import numpy as np
import pytest

from keras_lm import generation
from tests.generation.stubs import BigramLM

pytestmark = pytest.mark.multibackend

BOS, EOS, A, B = 2, 3, 4, 5
# From BOS, A looks best (0.5 > 0.4), but every continuation of A is unlikely
# (0.25 each), while B almost surely ends: P(B EOS) = 0.396 > P(A x EOS) = 0.125.
MYOPIC = {
    BOS: {A: 0.5, B: 0.4, 6: 0.1},
    A: {7: 0.25, 8: 0.25, 9: 0.25, 10: 0.25},
    B: {EOS: 0.99, 6: 0.01},
    6: {EOS: 1.0},
    7: {EOS: 1.0},
    8: {EOS: 1.0},
    9: {EOS: 1.0},
    10: {EOS: 1.0},
}


def _lp(num_tokens, alpha=0.6):
    return ((5 + num_tokens) / 6) ** alpha


@pytest.fixture(scope="module")
def model():
    return BigramLM(MYOPIC, vocabulary_size=12, max_sequence_length=8)


def test_greedy_is_myopic_and_beam_search_is_not(model):
    greedy = generation.generate(model, [[BOS]], max_new_tokens=5)
    assert list(greedy[0]) == [BOS, A, 7, EOS, 0, 0]
    beam = generation.generate(model, [[BOS]], max_new_tokens=5, method="beam")
    assert list(beam[0]) == [BOS, B, EOS, 0, 0, 0]


def test_scores_are_length_penalized_log_probabilities(model):
    beams, scores = generation.generate(
        model,
        [[BOS]],
        max_new_tokens=5,
        method="beam",
        num_beams=3,
        return_all_beams=True,
    )
    expected = [
        [BOS, B, EOS],  # log(0.4 * 0.99) / lp(2) = -0.84
        [BOS, A, 7, EOS],  # log(0.5 * 0.25) / lp(3) = -1.75, ties: lowest id
        [BOS, A, 8, EOS],  # -1.75; beats [BOS, 6, EOS]: log(0.1) / lp(2) = -2.10
    ]
    for beam, score, sequence in zip(beams[0], scores[0], expected):
        assert list(beam[: len(sequence)]) == sequence
        assert not beam[len(sequence) :].any()
        log_probability = model.log_probability(sequence)
        np.testing.assert_allclose(
            score, log_probability / _lp(len(sequence) - 1), rtol=1e-5
        )
    assert np.all(np.diff(scores[0]) <= 0), "beams must come best first"
    np.testing.assert_allclose(scores[0, 0], math.log(0.4 * 0.99) / _lp(2), rtol=1e-5)


def test_length_penalty_can_prefer_the_longer_hypothesis():
    # Short: BOS 4 EOS, probability 0.5 * 0.5; long: BOS 5 6 7 EOS,
    # 0.5 * 0.9 * 0.9 * 0.6. Raw log-probability prefers the short one (-1.386
    # vs -1.415); a strong penalty (alpha = 2) tips it to the long one.
    table = {
        BOS: {4: 0.5, 5: 0.5},
        4: {EOS: 0.5, 8: 0.5},
        8: {EOS: 1.0},
        5: {6: 0.9, 9: 0.1},
        6: {7: 0.9, 9: 0.1},
        7: {EOS: 0.6, 9: 0.4},
        9: {EOS: 1.0},
    }
    model = BigramLM(table, vocabulary_size=10, max_sequence_length=8)
    short, long = [BOS, 4, EOS], [BOS, 5, 6, 7, EOS]
    assert model.log_probability(short) > model.log_probability(long)
    for alpha, best in [(0.0, short), (2.0, long)]:
        beams, scores = generation.generate(
            model,
            [[BOS]],
            max_new_tokens=6,
            method="beam",
            num_beams=4,
            length_penalty=alpha,
            return_all_beams=True,
        )
        assert list(beams[0, 0, : len(best)]) == best
        np.testing.assert_allclose(
            scores[0, 0],
            model.log_probability(best) / _lp(len(best) - 1, alpha),
            rtol=1e-5,
        )


def test_finished_beams_keep_frozen_scores_while_others_continue():
    # One hypothesis ends at once; the other path runs to the length limit.
    table = {BOS: {EOS: 0.3, 4: 0.7}, 4: {4: 0.95, 5: 0.05}, 5: {4: 1.0}}
    model = BigramLM(table, vocabulary_size=6, max_sequence_length=8)
    beams, scores = generation.generate(
        model,
        [[BOS]],
        max_new_tokens=5,
        method="beam",
        num_beams=2,
        length_penalty=0.0,
        return_all_beams=True,
    )
    # [BOS, EOS] finished after one token, still ranked first: the alive beams
    # that never ended rank after every finished one.
    assert list(beams[0, 0]) == [BOS, EOS, 0, 0, 0, 0]
    np.testing.assert_allclose(scores[0, 0], math.log(0.3), rtol=1e-5)
    assert list(beams[0, 1]) == [BOS, 4, 4, 4, 4, 4]
    np.testing.assert_allclose(scores[0, 1], math.log(0.7 * 0.95**4), rtol=1e-5)


def test_rows_of_a_batch_search_independently(model):
    prompts = np.array([[BOS, A], [BOS, 0]], "int32")
    beams = generation.generate(model, prompts, max_new_tokens=4, method="beam")
    assert list(beams[0]) == [BOS, A, 7, EOS, 0, 0]
    assert list(beams[1]) == [BOS, B, EOS, 0, 0, 0]
