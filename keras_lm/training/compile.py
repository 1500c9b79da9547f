"""Compiling a model for training: optimizer, masked loss, metrics, precision."""

import keras

from keras_lm.special_ids import SpecialIds
from keras_lm.training import losses, schedules
from keras_lm.training import metrics as metrics_lib

# Normalization scales/offsets and biases are not decayed: shrinking them
# towards 0 does not regularize the function the way shrinking weights does.
_NO_DECAY = ["bias", "gamma", "beta", "scale"]


def set_mixed_precision(enabled=True, dtype="bfloat16"):
    """Sets the global Keras dtype policy for layers built afterwards.

    Variables stay float32 and layers compute in `dtype`; the loss and metrics
    of this package compute in float32 regardless. bfloat16 suits TPUs and
    recent GPUs and needs no loss scaling; with float16 `model.compile` wraps
    the optimizer in a `LossScaleOptimizer`.

    Args:
        enabled: bool, False restores full float32.
        dtype: "bfloat16" or "float16".

    Returns:
        The name of the policy now in effect.

    Example:
    ```python
    keras_lm.training.set_mixed_precision(True)  # "mixed_bfloat16"
    ```
    """
    if dtype not in ("bfloat16", "float16"):
        raise ValueError(
            f"dtype must be 'bfloat16' or 'float16'. Received: dtype={dtype!r}"
        )
    policy = f"mixed_{dtype}" if enabled else "float32"
    keras.config.set_dtype_policy(policy)
    return policy


class _ModelPadId:
    """Default of `ignore_id`: the pad id of the model's `special_ids`."""

    def __repr__(self):
        return "<the model's pad id>"


MODEL_PAD_ID = _ModelPadId()


def ignored_label(model, ignore_id=MODEL_PAD_ID):
    """The label id that losses and metrics ignore for `model`.

    An explicit `ignore_id` (an int, or None for "ignore no label") wins.
    Otherwise the pad id of `model.special_ids` (None for a vocabulary without
    padding, such as GPT-2's), or 0 when the model carries no special ids.
    """
    if ignore_id is not MODEL_PAD_ID:
        return ignore_id
    special_ids = getattr(model, "special_ids", None)
    if special_ids is None:
        return 0
    return SpecialIds.from_value(special_ids).pad_id


def default_metrics(ignore_id=MODEL_PAD_ID, model=None):
    """New `[MaskedAccuracy, Perplexity]`; call it inside the strategy scope.

    Args:
        ignore_id: label id to ignore, or None for none. Defaults to the pad
            id of `model` (see `ignored_label`), 0 without a model.
        model: the model the metrics are for.
    """
    ignore_id = ignored_label(model, ignore_id)
    return [
        metrics_lib.MaskedAccuracy(ignore_id=ignore_id),
        metrics_lib.Perplexity(ignore_id=ignore_id),
    ]


def _hidden_dim(model):
    try:
        return model.get_config().get("hidden_dim")
    except NotImplementedError:
        return None


def make_optimizer(
    learning_rate,
    weight_decay=0.0,
    beta_1=0.9,
    beta_2=0.98,
    epsilon=1e-9,
    clipnorm=None,
    global_clipnorm=1.0,
):
    """AdamW with the paper's betas and epsilon; see `compile_model`."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        clipnorm=clipnorm,
        global_clipnorm=global_clipnorm,
    )
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_names=_NO_DECAY)
    return optimizer


def compile_model(
    model,
    learning_rate=None,
    warmup_steps=4000,
    label_smoothing=0.1,
    weight_decay=0.0,
    beta_1=0.9,
    beta_2=0.98,
    epsilon=1e-9,
    clipnorm=None,
    global_clipnorm=1.0,
    ignore_id=MODEL_PAD_ID,
    metrics=None,
    jit_compile=True,
    steps_per_execution=1,
):
    """Compiles `model` with AdamW, the masked label-smoothed loss and metrics.

    Call it inside `strategy.scope()` when training under a strategy (as
    `keras_lm.training.train` does), so the optimizer and metric variables are
    created there.

    Gradient clipping is Keras's: under a multi-replica strategy Keras clips
    each replica's share of the gradient before summing the shares, so a
    threshold that is reached changes the update compared with one device.

    Args:
        model: an uncompiled Keras model that outputs logits [B, T, V].
        learning_rate: float or `LearningRateSchedule`. None: the paper's
            `InverseSqrtWarmup(hidden_dim, warmup_steps)`, with `hidden_dim`
            read from `model.get_config()`.
        warmup_steps: int, warmup of the default schedule.
        label_smoothing: float, for the loss only (metrics are unsmoothed).
        weight_decay: float, decoupled weight decay; biases and normalization
            parameters are excluded. 0 as in the paper.
        beta_1, beta_2, epsilon: Adam parameters (paper: 0.9, 0.98, 1e-9).
        clipnorm: optional per-variable gradient norm clip.
        global_clipnorm: optional clip of the global gradient norm.
        ignore_id: int, the label id the loss and metrics ignore, or None to
            ignore none (weights then come from `sample_weight` only). Defaults
            to the pad id of `model.special_ids` (None when the vocabulary has
            no padding), or 0 for a model without `special_ids`.
        metrics: list of metrics, given to Keras as `weighted_metrics` so
            they see `sample_weight`; None for `default_metrics(ignore_id)`.
        jit_compile: bool, compile train/eval steps with XLA.
        steps_per_execution: int, train steps per compiled call.

    Returns:
        The same model, compiled.

    Example:
    ```python
    with strategy.scope():
        model = keras_lm.models.TransformerSeq2Seq(**config)
        keras_lm.training.compile_model(model, label_smoothing=0.1)
    model.fit(train_data, epochs=10)
    ```
    """
    if learning_rate is None:
        hidden_dim = _hidden_dim(model)
        if not hidden_dim:
            raise ValueError(
                "learning_rate=None uses the paper's schedule, which needs the "
                f"model's hidden_dim, but {type(model).__name__}.get_config() "
                "has none. Pass learning_rate=... (a float or a schedule)."
            )
        learning_rate = schedules.InverseSqrtWarmup(
            hidden_dim=hidden_dim, warmup_steps=warmup_steps
        )
    ignore_id = ignored_label(model, ignore_id)
    model.compile(
        optimizer=make_optimizer(
            learning_rate,
            weight_decay=weight_decay,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            clipnorm=clipnorm,
            global_clipnorm=global_clipnorm,
        ),
        loss=losses.MaskedSparseCategoricalCrossentropy(
            label_smoothing=label_smoothing, ignore_id=ignore_id
        ),
        # weighted_metrics: Keras passes sample_weight to these only, and the
        # multi-worker loop weights the same metric objects.
        weighted_metrics=default_metrics(ignore_id) if metrics is None else metrics,
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
