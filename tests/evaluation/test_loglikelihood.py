"""Exactness of token-level scoring: one full forward pass is the reference."""

import keras
import numpy as np
import pytest

from keras_lm.evaluation import (
    loglikelihood_ids,
    rolling_loglikelihood,
    rolling_windows,
)
from keras_lm.generation import trace_count
from keras_lm.models import TransformerLM

VOCAB = 40
START = 2  # keras_lm's default special ids: bos 2


def tiny_model(max_sequence_length=24):
    return TransformerLM(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=max_sequence_length,
    )


def full_pass_log_probs(model, ids):
    """[T, V] float64 log-softmax of one unpadded forward pass over `ids`."""
    logits = keras.ops.convert_to_numpy(model({"token_ids": np.array([ids], "int32")}))[
        0
    ].astype("float64")
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def reference(model, context, continuation):
    """Sum of log-softmax at the continuation's positions, and whether each
    continuation id is the argmax there."""
    ids = context + continuation
    log_probs = full_pass_log_probs(model, ids[:-1])
    positions = range(len(context) - 1, len(ids) - 1)
    logprob = sum(log_probs[p, ids[p + 1]] for p in positions)
    greedy = all(log_probs[p].argmax() == ids[p + 1] for p in positions)
    return logprob, greedy


def random_requests(count, seed, longest=14):
    rng = np.random.default_rng(seed)
    requests = []
    for _ in range(count):
        context = [START] + rng.integers(4, VOCAB, rng.integers(0, longest)).tolist()
        continuation = rng.integers(4, VOCAB, rng.integers(1, 6)).tolist()
        requests.append((context, continuation))
    return requests


@pytest.mark.multibackend
def test_loglikelihood_equals_sum_of_log_softmax_of_one_full_pass():
    model = tiny_model()
    # One total length (12 ids, padded to 16 inputs), split at every place:
    # the unpadded reference passes then share one shape (fast on JAX).
    ids = [START] + np.random.default_rng(0).integers(4, VOCAB, 11).tolist()
    requests = [(ids[:split], ids[split:]) for split in range(1, 12)]
    results = loglikelihood_ids(model, requests, batch_size=4)
    assert len(results) == len(requests)
    for (context, continuation), (logprob, greedy) in zip(requests, results):
        expected, expected_greedy = reference(model, context, continuation)
        np.testing.assert_allclose(logprob, expected, rtol=0, atol=1e-5)
        assert greedy == expected_greedy
    assert results.truncated == [0] * len(requests)


@pytest.mark.slow
def test_scores_do_not_depend_on_batch_composition_padding_or_batch_size():
    model = tiny_model()
    requests = random_requests(6, seed=1)
    expected = [reference(model, *request) for request in requests]
    # Other neighbours (a long one forces wide padding), another order, other
    # batch sizes.
    neighbours = random_requests(3, seed=2, longest=18)
    order = np.random.default_rng(3).permutation(len(requests))
    mixed = [requests[i] for i in order] + neighbours
    for batch_size in (3, 16):
        results = loglikelihood_ids(model, mixed, batch_size=batch_size)
        for position, i in enumerate(order):
            np.testing.assert_allclose(
                results[position][0], expected[i][0], rtol=0, atol=1e-5
            )
            assert results[position][1] == expected[i][1]


def test_is_greedy_holds_exactly_for_the_argmax_continuation():
    model = tiny_model()
    context = [START, 5, 9, 11]
    ids = list(context)
    for _ in range(3):  # greedy continuation, one forward pass per id
        ids.append(int(full_pass_log_probs(model, ids)[-1].argmax()))
    greedy_continuation = ids[len(context) :]
    other = greedy_continuation[:-1] + [(greedy_continuation[-1] + 1) % VOCAB]
    results = loglikelihood_ids(
        model, [(context, greedy_continuation), (context, other)]
    )
    assert results[0][1] is True
    assert results[1][1] is False
    assert results[0][0] > results[1][0]


def test_a_long_context_is_cut_from_the_left_and_reported():
    model = tiny_model(max_sequence_length=24)
    context = [START] + list(range(4, 30))  # 27 ids
    continuation = [7, 8, 9]
    with pytest.warns(UserWarning, match="lost ids from the left"):
        results = loglikelihood_ids(
            model, [(context, continuation), ([START], [5])], max_length=10
        )
    # The window holds 10 inputs: the last 11 ids, the first 19 cut.
    assert results.truncated == [len(context) + 3 - 11, 0]
    expected, _ = reference(model, context[-8:], continuation)
    np.testing.assert_allclose(results[0][0], expected, rtol=0, atol=1e-5)


@pytest.mark.multibackend
def test_requests_of_one_bucket_do_not_retrace():
    model = tiny_model()
    loglikelihood_ids(model, random_requests(4, seed=4, longest=4), batch_size=4)
    before = trace_count()
    # Other ids and lengths, the same bucket (width 8, batch 4).
    loglikelihood_ids(model, random_requests(4, seed=5, longest=4), batch_size=4)
    loglikelihood_ids(model, random_requests(3, seed=6, longest=4), batch_size=4)
    assert trace_count() == before


def test_rolling_equals_full_context_when_the_document_fits_the_window():
    model = tiny_model(max_sequence_length=24)
    document = np.random.default_rng(7).integers(4, VOCAB, 15).tolist()
    expected, _ = reference(model, [START], document)
    for stride in (None, 1, 4, 24):
        (total,) = rolling_loglikelihood(model, None, [document], stride=stride)
        np.testing.assert_allclose(total, expected, rtol=0, atol=1e-5)


@pytest.mark.multibackend
def test_rolling_with_a_stride_scores_each_token_once_in_its_window():
    model = tiny_model(max_sequence_length=24)
    tokens = np.random.default_rng(8).integers(4, VOCAB, 9).tolist()
    sequence = [START] + tokens  # positions 1..9 are scored
    # window 4, stride 3, by hand: (inputs begin, inputs end, first scored).
    windows = [(0, 4, 1), (3, 7, 5), (5, 9, 8)]
    expected = 0.0
    scored = []
    for begin, end, first in windows:
        log_probs = full_pass_log_probs(model, sequence[begin:end])
        for position in range(first, end + 1):
            expected += log_probs[position - 1 - begin, sequence[position]]
            scored.append(position)
    assert scored == list(range(1, 10))
    totals = rolling_loglikelihood(model, None, [tokens, []], stride=3, max_length=4)
    np.testing.assert_allclose(totals[0], expected, rtol=0, atol=1e-5)
    assert totals[1] == 0.0  # an empty document
    requests = rolling_windows(tokens, START, window=4, stride=3)
    assert [len(context + continuation) - 1 for context, continuation in requests] == [
        end - begin for begin, end, _ in windows
    ]
