"""Checks on the data given to `train`, run before anything is compiled.

Without them a wrong dataset fails deep inside the first compiled step:
"None values not supported" for a dataset without labels, a broadcast error
for labels of the wrong length, and "indices[...] is not in [0, V)" (on CPU;
silently wrong on GPU) when the tokenizer's vocabulary is larger than the
model's.
"""

import numpy as np

from keras_lm.layers.validation import check_ids_in_vocabulary

# Input keys whose ids line up position by position with the labels.
_LABEL_ALIGNED_KEYS = ("decoder_token_ids", "token_ids")


def check_dataset(name, dataset):
    """`dataset` must be a `tf.data.Dataset` of `(inputs, labels[, weights])`."""
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            f"{name} must be a tf.data.Dataset of batches (inputs, labels) or "
            f"(inputs, labels, sample_weight). Received: {type(dataset).__name__}. "
            "Use keras_lm.data.make_translation_dataset or make_lm_dataset, or "
            "tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(n)."
        )
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            f"{name} must yield (inputs, labels) or (inputs, labels, "
            f"sample_weight) tuples. Received elements {_describe(spec)}. "
            "Labels are the next-token ids, e.g. (inputs, labels) with "
            "labels = ids[:, 1:] and inputs = ids[:, :-1]."
        )


def check_first_batch(name, dataset, model):
    """Token ids and labels of the first batch fit the model's vocabulary.

    Ids and labels must be in `[0, vocabulary_size)`, except labels equal to
    the compiled loss's `ignore_id` (e.g. -100), which are never looked up.
    Reads one batch (the pipeline starts once more than fit alone would).
    """
    batch = next(iter(dataset.take(1)), None)
    if batch is None:
        raise ValueError(
            f"{name} yields no batch. The corpus may be empty, every example "
            "filtered out (max_length), or smaller than one batch with "
            "drop_remainder=True."
        )
    inputs, labels = batch[0], np.asarray(batch[1])
    vocabulary_size = getattr(model, "vocabulary_size", None)
    arrays = dict(inputs) if isinstance(inputs, dict) else {}
    if vocabulary_size:
        ignore_id = getattr(getattr(model, "loss", None), "ignore_id", None)
        looked_up = labels if ignore_id is None else labels[labels != ignore_id]
        for key, ids in [*arrays.items(), ("labels", looked_up)]:
            ids = np.asarray(ids)
            if np.issubdtype(ids.dtype, np.integer) and ids.size:
                check_ids_in_vocabulary(f"{name}: {key}", ids, vocabulary_size)
    aligned = next((arrays[k] for k in _LABEL_ALIGNED_KEYS if k in arrays), None)
    if aligned is not None and tuple(np.shape(aligned)) != labels.shape:
        raise ValueError(
            f"{name}: labels have shape {labels.shape} but the model predicts "
            f"one label per input position, shape {tuple(np.shape(aligned))}. "
            "Shift the targets instead of slicing one side only: inputs = "
            "ids[:, :-1], labels = ids[:, 1:]."
        )


def _describe(spec):
    if isinstance(spec, tuple):
        return f"of {len(spec)} parts"
    return f"of type {type(spec).__name__}"
