"""Measurements on built datasets."""

import numpy as np

from keras_lm.special_ids import SpecialIds

_DEFAULT_PAD_ID = SpecialIds().pad_id


def padding_fraction(dataset, max_batches=None, pad_id=_DEFAULT_PAD_ID):
    """Fraction of token positions in a dataset's inputs that are padding.

    Counts every int tensor of the `inputs` dict of each
    `(inputs, labels, sample_weight)` batch, so for translation it covers
    encoder and decoder ids together.

    Args:
        dataset: a dataset from `make_translation_dataset` or
            `make_lm_dataset`.
        max_batches: optional int, stop after this many batches.
        pad_id: the tokenizer's pad id (`tokenizer.pad_id`); keras_lm's
            default vocabulary uses 0.

    Returns:
        A float in [0, 1).

    Example:
    >>> bucketed = make_translation_dataset(pairs, tokenizer, batch_size=32)
    >>> padding_fraction(bucketed) < padding_fraction(
    ...     make_translation_dataset(pairs, tokenizer, batch_size=32,
    ...                              static_shapes=True))
    True
    """
    if max_batches is not None:
        dataset = dataset.take(max_batches)
    padding = total = 0
    for inputs, _, _ in dataset.as_numpy_iterator():
        for ids in inputs.values():
            padding += int(np.count_nonzero(ids == pad_id))
            total += ids.size
    if total == 0:
        raise ValueError("The dataset yielded no token: nothing to measure.")
    return padding / total
