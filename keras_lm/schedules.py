"""`keras_lm.schedules`: warmup + inverse square root, warmup + cosine."""

from keras_lm.training.schedules import InverseSqrtWarmup, WarmupCosine

__all__ = ["InverseSqrtWarmup", "WarmupCosine"]
