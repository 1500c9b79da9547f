"""Masked, label-smoothed token cross-entropy.

Notation: B = batch, T = target length, V = vocabulary size.
"""

import keras
from keras import ops


def log_probabilities(y_pred, from_logits):
    """float32 log-probabilities [B, T, V], whatever the dtype of `y_pred`.

    bfloat16 has 8 bits of mantissa: a softmax over tens of thousands of
    entries computed in it loses most of the loss's precision.
    """
    y_pred = ops.cast(y_pred, "float32")
    if from_logits:
        return ops.log_softmax(y_pred, axis=-1)
    return ops.log(ops.clip(y_pred, keras.backend.epsilon(), 1.0))


def token_weights(y_true, sample_weight, ignore_id):
    """float32 [B, T]: 0 where the label is `ignore_id`, else `sample_weight`.

    `ignore_id=None` ignores no label (a vocabulary without padding, such as
    GPT-2's): the weights are then `sample_weight` alone, or ones.
    """
    if ignore_id is None:
        weights = ops.ones(ops.shape(y_true), "float32")
    else:
        weights = ops.cast(ops.not_equal(y_true, ignore_id), "float32")
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, "float32")
        weights = weights * ops.reshape(sample_weight, ops.shape(weights))
    return weights


def true_class_log_probabilities(y_true, log_probs, ignore_id):
    """float32 [B, T]: log p(label). Ignored positions read class 0 instead, so
    an `ignore_id` outside [0, V) (e.g. -100) never indexes out of range."""
    safe = y_true
    if ignore_id is not None:
        safe = ops.where(ops.equal(y_true, ignore_id), 0, y_true)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(safe, -1), axis=-1)
    return ops.squeeze(picked, axis=-1)


def _sum_over_replicas(value):
    """Sum `value` over the replicas of a running `tf.distribute` step.

    Every replica must divide by the real-token count of the GLOBAL batch for
    the summed gradients to be those of one device seeing the whole batch.
    Outside a replica context, or on other backends (whose data parallelism
    computes the loss over the global batch already), this is the identity.
    """
    if keras.backend.backend() != "tensorflow":
        return value
    from keras_lm import distribute

    return distribute.sum_over_replicas(value)


@keras.saving.register_keras_serializable(package="keras_lm")
class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Token cross-entropy that ignores padding, with label smoothing.

    The loss is the mean over real tokens: positions whose label equals
    `ignore_id` contribute nothing, so the same real tokens padded to two
    different lengths give the same loss. `sample_weight` (e.g. the data
    pipeline's `labels != 0`) multiplies the per-token weights and the mean is
    taken over their sum. Under `tf.distribute` the per-replica loss is the
    replica's weighted sum divided by the weight of the global batch, so the
    loss and gradients equal those of one device on the whole batch, and
    `model.fit` reports the masked mean.

    Label smoothing follows Vaswani et al. (2017): the target puts
    `1 - label_smoothing` on the label and spreads `label_smoothing` evenly over
    all V classes (the label included), as `keras.losses` and PyTorch do. The
    per-token loss is `(1 - eps) * -log p(label) + eps * mean_v(-log p(v))`.
    Computation is in float32 whatever the dtype of the predictions.

    Args:
        label_smoothing: float in [0, 1). 0.1 in the paper.
        from_logits: bool, whether `y_pred` are logits (else probabilities).
        ignore_id: int, label value that marks padding, or None to ignore
            no label (weights then come from `sample_weight` only, e.g. for
            GPT-2, which has no padding id). Defaults to 0.
        reduction: `"masked_mean"` (default) as described above; `"sum"` for
            the weighted sum over tokens; `None`/`"none"` for the weighted
            per-token losses [B, T].
        name: optional name of the loss.
        dtype: dtype of the returned loss. Defaults to float32.

    Call arguments:
        y_true: int labels [B, T].
        y_pred: logits or probabilities [B, T, V], any float dtype.
        sample_weight: optional float weights [B, T].

    Example:
    ```python
    loss = keras_lm.losses.MaskedSparseCategoricalCrossentropy(
        label_smoothing=0.1
    )
    model.compile(optimizer="adam", loss=loss)
    ```
    """

    def __init__(
        self,
        label_smoothing=0.0,
        from_logits=True,
        ignore_id=0,
        reduction="masked_mean",
        name="masked_sparse_categorical_crossentropy",
        dtype=None,
    ):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                "label_smoothing must be in [0, 1). "
                f"Received: label_smoothing={label_smoothing}"
            )
        if reduction not in ("masked_mean", "sum", "none", None):
            raise ValueError(
                "reduction must be 'masked_mean', 'sum', 'none' or None. "
                f"Received: reduction={reduction!r}"
            )
        # Keras's own reductions divide by B * T or by the replica count,
        # neither of which is the real-token count, so ours is applied in
        # __call__ and the base class is told to reduce nothing.
        super().__init__(name=name, reduction="none", dtype=dtype or "float32")
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits
        self.ignore_id = ignore_id

    def call(self, y_true, y_pred):
        """Unweighted per-token loss, float32 [B, T] (padding not removed)."""
        log_probs = log_probabilities(y_pred, self.from_logits)
        y_true = ops.cast(y_true, "int32")
        nll = -true_class_log_probabilities(y_true, log_probs, self.ignore_id)
        if self.label_smoothing == 0.0:
            return nll
        smooth = -ops.mean(log_probs, axis=-1)
        return (1.0 - self.label_smoothing) * nll + self.label_smoothing * smooth

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            weights = token_weights(y_true, sample_weight, self.ignore_id)
            weighted = self.call(y_true, y_pred) * weights
            if self.reduction in ("none", None):
                return ops.cast(weighted, self.dtype)
            total = ops.sum(weighted)
            if self.reduction == "sum":
                return ops.cast(total, self.dtype)
            count = _sum_over_replicas(ops.stop_gradient(ops.sum(weights)))
            return ops.cast(ops.divide_no_nan(total, count), self.dtype)

    def get_config(self):
        return {
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
            "ignore_id": self.ignore_id,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
        }
