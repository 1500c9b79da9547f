"""Token-budget batching: never more than max_tokens per side, and no more
batch shapes (so XLA programs) than the fixed bucket set."""

import pytest
import tensorflow as tf
from corpus_helpers import make_pairs

from keras_lm.data import make_translation_dataset, token_batch_shapes

PAIRS = make_pairs(400, seed=5, max_words=20)


def test_shapes_are_budget_over_bucket_length():
    assert token_batch_shapes(64, 1024, [16, 32]) == [(64, 16), (32, 32), (16, 64)]
    assert token_batch_shapes(64, 100, ()) == [(1, 64)]


@pytest.mark.parametrize("streamed", [False, True])
def test_batches_stay_within_budget_and_the_fixed_shapes(tokenizer, streamed):
    max_tokens, max_length = 96, 24
    pairs = PAIRS
    if streamed:
        pairs = tf.data.Dataset.from_tensor_slices(tuple(map(list, zip(*PAIRS))))
    dataset = make_translation_dataset(
        pairs, tokenizer, None, max_length=max_length, max_tokens=max_tokens, seed=1
    )
    allowed = set(token_batch_shapes(max_length, max_tokens))
    traces = []

    @tf.function
    def step(inputs, labels, weights):
        traces.append(labels.shape)  # Python side effect: runs once per trace.
        return tf.reduce_sum(weights)

    seen, real = set(), 0
    for inputs, labels, weights in dataset:
        for ids in (inputs["encoder_token_ids"], inputs["decoder_token_ids"], labels):
            assert ids.shape[0] * ids.shape[1] <= max_tokens
        seen.add(tuple(labels.shape))
        real += int(step(inputs, labels, weights))
    assert seen <= allowed
    assert len(seen) > 1  # several buckets were used, each at its own size
    assert len(traces) == len(seen) <= len(allowed)
    assert real > 0


def test_budget_must_fit_one_longest_pair(tokenizer):
    with pytest.raises(ValueError, match="max_tokens=10 is below max_length=16"):
        make_translation_dataset(PAIRS, tokenizer, None, max_length=16, max_tokens=10)
    with pytest.raises(ValueError, match="either batch_size or max_tokens"):
        make_translation_dataset(PAIRS, tokenizer, 8, max_tokens=256)
    with pytest.raises(ValueError, match="static_shapes"):
        make_translation_dataset(
            PAIRS, tokenizer, None, max_tokens=256, static_shapes=True
        )
