"""Batching translation pairs by a token budget over fixed bucket shapes.

Shapes: B = pairs per batch, L = padded length of both sides.

Each bucket has one padded length L (its upper edge) and one batch size
`max_tokens // L`, so every batch has at most `max_tokens` positions per side
and the whole dataset has one shape per bucket: XLA compiles that many train
steps, not one per batch.
"""

import tensorflow as tf

from keras_lm.data.validation import check_positive_int


def token_batch_shapes(max_length, max_tokens, bucket_boundaries=None):
    """The `(batch_size, length)` of every batch `max_tokens` batching makes.

    Args:
        max_length: int, longest sequence (as in `make_translation_dataset`).
        max_tokens: int, positions per side per batch; at least `max_length`.
        bucket_boundaries: bucket lengths below `max_length`; None picks
            `default_bucket_boundaries(max_length)`, `()` one bucket.

    Returns:
        A list of `(B, L)`, shortest bucket first, ending with `L = max_length`.

    Example:
    >>> token_batch_shapes(64, 1024, [16, 32])
    [(64, 16), (32, 32), (16, 64)]
    """
    from keras_lm.data.translation_dataset import default_bucket_boundaries

    check_positive_int("max_tokens", max_tokens, minimum=max_length)
    if bucket_boundaries is None:
        bucket_boundaries = default_bucket_boundaries(max_length)
    lengths = [b for b in bucket_boundaries if b < max_length] + [max_length]
    return [(max_tokens // length, length) for length in lengths]


def bucket_by_tokens(dataset, shapes, padding_values, drop_remainder):
    """Batches `(encoder, decoder, labels, weights)` examples into `shapes`."""
    sizes = [size for size, _ in shapes]
    return dataset.bucket_by_sequence_length(
        element_length_func=longest_side,
        # bucket i holds lengths in [edge i-1, edge i), padded to edge i - 1.
        bucket_boundaries=[length + 1 for _, length in shapes],
        bucket_batch_sizes=sizes + sizes[-1:],
        padding_values=padding_values,
        pad_to_bucket_boundary=True,
        drop_remainder=drop_remainder,
    )


def longest_side(encoder, decoder, labels, weights):
    return tf.maximum(tf.size(encoder), tf.size(decoder))


def check_batching(batch_size, max_tokens, max_length, static_shapes):
    if max_tokens is None:
        check_positive_int("batch_size", batch_size)
        return
    if batch_size is not None:
        raise ValueError(
            "Pass either batch_size or max_tokens, not both: max_tokens sets "
            f"each bucket's batch size. Received: batch_size={batch_size!r}, "
            f"max_tokens={max_tokens!r}"
        )
    if static_shapes:
        raise ValueError(
            "max_tokens cannot be combined with static_shapes=True, which pads "
            "every batch of batch_size pairs to max_length. Pass batch_size "
            "instead, or static_shapes=False."
        )
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise ValueError(f"max_tokens must be an integer. Received: {max_tokens!r}")
    if max_tokens < max_length:
        raise ValueError(
            f"max_tokens={max_tokens} is below max_length={max_length}: a "
            "longest pair would not fit in one batch. Raise max_tokens."
        )
