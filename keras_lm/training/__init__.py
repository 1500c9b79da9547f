"""Training: masked loss and metrics, schedules, callbacks, `train`.

Losses, metrics and schedules compute with `keras.ops` and run on any Keras
backend; `train` and the multi-worker loop need TensorFlow, imported when
they run.
"""

from keras_lm.training.backup import ResumableBackup
from keras_lm.training.callbacks import StopOnNaN, TimeLimit, default_callbacks
from keras_lm.training.checkpoint import AtomicModelCheckpoint
from keras_lm.training.compile import (
    compile_model,
    default_metrics,
    make_optimizer,
    set_mixed_precision,
)
from keras_lm.training.losses import MaskedSparseCategoricalCrossentropy
from keras_lm.training.metrics import MaskedAccuracy, Perplexity
from keras_lm.training.schedules import InverseSqrtWarmup, WarmupCosine
from keras_lm.training.trainer import train

__all__ = [
    "AtomicModelCheckpoint",
    "InverseSqrtWarmup",
    "MaskedAccuracy",
    "MaskedSparseCategoricalCrossentropy",
    "Perplexity",
    "ResumableBackup",
    "StopOnNaN",
    "TimeLimit",
    "WarmupCosine",
    "compile_model",
    "default_callbacks",
    "default_metrics",
    "make_optimizer",
    "set_mixed_precision",
    "train",
]
