"""Learning-rate schedules with warmup.

`step` is the optimizer's update counter (`optimizer.iterations`), which starts
at 0. Both schedules are finite at step 0.
"""

import math

import keras
from keras import ops


def _check_positive(name, value):
    if value is None or value <= 0:
        raise ValueError(f"{name} must be positive. Received: {name}={value}")


@keras.saving.register_keras_serializable(package="keras_lm")
class InverseSqrtWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup then inverse square-root decay (Vaswani et al., 2017).

    `lr = scale * hidden_dim**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)`

    The paper counts steps from 1; step 0 is given the rate of step 1 so the
    first update is not wasted and nothing is divided by zero. The peak,
    `scale * (hidden_dim * warmup_steps)**-0.5`, is reached at
    `step == warmup_steps`.

    Args:
        hidden_dim: int, model width d_model (512 for transformer_base).
        warmup_steps: int, steps of linear warmup. 4000 in the paper.
        scale: float multiplier on the whole schedule.

    Example:
    ```python
    schedule = keras_lm.schedules.InverseSqrtWarmup(hidden_dim=512)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    ```
    """

    def __init__(self, hidden_dim, warmup_steps=4000, scale=1.0):
        _check_positive("hidden_dim", hidden_dim)
        _check_positive("warmup_steps", warmup_steps)
        _check_positive("scale", scale)
        self.hidden_dim = hidden_dim
        self.warmup_steps = warmup_steps
        self.scale = scale

    @classmethod
    def with_peak(cls, peak_learning_rate, hidden_dim, warmup_steps):
        """The schedule whose rate at `step == warmup_steps` is the given peak.

        Small batches (a few thousand tokens, as on a CPU) want a lower peak
        than the paper's 25,000-token batches reach at scale 1; naming the
        peak is easier than working out `scale`. The result is an ordinary
        `InverseSqrtWarmup` (its config holds the equivalent `scale`).

        Example:
        ```python
        schedule = keras_lm.schedules.InverseSqrtWarmup.with_peak(
            1e-3, hidden_dim=256, warmup_steps=300
        )
        ```
        """
        _check_positive("peak_learning_rate", peak_learning_rate)
        # The constructor checks hidden_dim and warmup_steps before the
        # square root sees them.
        schedule = cls(hidden_dim=hidden_dim, warmup_steps=warmup_steps)
        schedule.scale = peak_learning_rate * math.sqrt(hidden_dim * warmup_steps)
        return schedule

    def __call__(self, step):
        step = ops.maximum(ops.cast(step, "float32"), 1.0)
        decay = ops.rsqrt(step)
        warmup = step * (float(self.warmup_steps) ** -1.5)
        return self.scale * float(self.hidden_dim) ** -0.5 * ops.minimum(decay, warmup)

    def get_config(self):
        return {
            "hidden_dim": self.hidden_dim,
            "warmup_steps": self.warmup_steps,
            "scale": self.scale,
        }


@keras.saving.register_keras_serializable(package="keras_lm")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to a peak, then cosine decay to a final rate.

    The first `warmup_steps` updates (steps 0 to `warmup_steps - 1`) rise
    linearly: `lr = peak * (step + 1) / warmup_steps`, so step 0 already
    moves the weights and the last warmup step, `warmup_steps - 1`, is at the
    peak. From there `lr = final + (peak - final) * (1 + cos(pi * progress)) / 2`
    with `progress` going from 0 at the peak step to 1 at `total_steps`;
    `final` afterwards. With `warmup_steps=0` step 0 is at the peak.

    Args:
        peak_learning_rate: float, rate of the last warmup step.
        warmup_steps: int >= 0, steps of linear warmup (0: start at the peak).
        total_steps: int > warmup_steps, step at which `final_learning_rate`
            is reached.
        final_learning_rate: float, rate at and after `total_steps`.

    Example:
    ```python
    schedule = keras_lm.schedules.WarmupCosine(
        peak_learning_rate=3e-4, warmup_steps=1000, total_steps=100_000
    )
    ```
    """

    def __init__(
        self,
        peak_learning_rate,
        warmup_steps,
        total_steps,
        final_learning_rate=0.0,
    ):
        _check_positive("peak_learning_rate", peak_learning_rate)
        if warmup_steps is None or warmup_steps < 0:
            raise ValueError(
                f"warmup_steps must be >= 0. Received: warmup_steps={warmup_steps}"
            )
        if total_steps is None or total_steps <= warmup_steps:
            raise ValueError(
                "total_steps must be greater than warmup_steps. Received: "
                f"total_steps={total_steps}, warmup_steps={warmup_steps}"
            )
        if not 0.0 <= final_learning_rate <= peak_learning_rate:
            raise ValueError(
                "final_learning_rate must be in [0, peak_learning_rate]. "
                f"Received: final_learning_rate={final_learning_rate}, "
                f"peak_learning_rate={peak_learning_rate}"
            )
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.final_learning_rate = final_learning_rate

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        final = self.final_learning_rate
        peak_step = max(self.warmup_steps - 1, 0)
        # max(..., 1) keeps the unused branch of `where` finite when there is
        # no warmup.
        warmup = peak * (step + 1.0) / max(float(self.warmup_steps), 1.0)
        progress = (step - peak_step) / float(self.total_steps - peak_step)
        progress = ops.clip(progress, 0.0, 1.0)
        cosine = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < peak_step, warmup, cosine)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "final_learning_rate": self.final_learning_rate,
        }
