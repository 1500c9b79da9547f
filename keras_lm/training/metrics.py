"""Token metrics that ignore padding: accuracy and perplexity.

Both keep running sums (weighted hits or negative log-likelihood, and weight)
rather than averaging per-batch values, so the result over an epoch is the
per-token value over all its real tokens, and replicas combine by summation.
Notation: B = batch, T = target length, V = vocabulary size.
"""

import keras
from keras import ops

from keras_lm.training import losses


class _MaskedTokenMean(keras.metrics.Metric):
    """Weighted mean of a per-token quantity over real (non-ignored) tokens."""

    def __init__(self, from_logits=True, ignore_id=0, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype or "float32")
        self.from_logits = from_logits
        self.ignore_id = ignore_id
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="total"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype="float32", name="count"
        )

    def per_token(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch: int labels [B, T], predictions [B, T, V]."""
        y_true = ops.cast(y_true, "int32")
        weights = losses.token_weights(y_true, sample_weight, self.ignore_id)
        values = self.per_token(y_true, y_pred)
        self.total.assign_add(ops.sum(values * weights))
        self.count.assign_add(ops.sum(weights))

    def mean(self):
        return ops.divide_no_nan(self.total, self.count)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {
            "from_logits": self.from_logits,
            "ignore_id": self.ignore_id,
            "name": self.name,
            "dtype": self.dtype,
        }


@keras.saving.register_keras_serializable(package="keras_lm")
class MaskedAccuracy(_MaskedTokenMean):
    """Fraction of real tokens whose arg-max prediction equals the label.

    Args:
        from_logits: bool, unused by the arg-max but kept for a signature
            shared with `Perplexity`.
        ignore_id: int, label value that marks padding, or None to ignore
            no label (weights then come from `sample_weight` only). Defaults
            to 0.
        name: metric name in logs. Defaults to "accuracy".
        dtype: dtype of the result. Defaults to float32.

    Example:
    ```python
    metric = keras_lm.metrics.MaskedAccuracy()
    metric.update_state(labels, logits)
    metric.result()
    ```
    """

    def __init__(self, from_logits=True, ignore_id=0, name="accuracy", dtype=None):
        super().__init__(
            from_logits=from_logits, ignore_id=ignore_id, name=name, dtype=dtype
        )

    def per_token(self, y_true, y_pred):
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        return ops.cast(ops.equal(predicted, y_true), "float32")

    def result(self):
        return self.mean()


@keras.saving.register_keras_serializable(package="keras_lm")
class Perplexity(_MaskedTokenMean):
    """exp of the mean cross-entropy over real tokens, without label smoothing.

    The mean is over every real token seen since the last reset, not a mean of
    per-batch perplexities.

    Args:
        from_logits: bool, whether predictions are logits (else probabilities).
        ignore_id: int, label value that marks padding, or None to ignore
            no label (weights then come from `sample_weight` only). Defaults
            to 0.
        name: metric name in logs. Defaults to "perplexity".
        dtype: dtype of the result. Defaults to float32.

    Example:
    ```python
    metric = keras_lm.metrics.Perplexity()
    metric.update_state(labels, logits, sample_weight=labels != 0)
    metric.result()
    ```
    """

    def __init__(self, from_logits=True, ignore_id=0, name="perplexity", dtype=None):
        super().__init__(
            from_logits=from_logits, ignore_id=ignore_id, name=name, dtype=dtype
        )

    def per_token(self, y_true, y_pred):
        log_probs = losses.log_probabilities(y_pred, self.from_logits)
        return -losses.true_class_log_probabilities(y_true, log_probs, self.ignore_id)

    def result(self):
        return ops.exp(self.mean())
