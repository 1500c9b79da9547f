"""keras_lm: Transformer language models with Keras 3 and TensorFlow.

`layers`, `models`, `losses`, `metrics`, `schedules` and `generation` compute
with `keras.ops` and run on any Keras backend. `tokenizers`, `data`,
`distribute` and `export` need TensorFlow (`convert` needs only numpy and
safetensors) and are imported on first use.
"""

import importlib

__version__ = "0.1.0"

from keras_lm import layers, models  # noqa: E402,F401
from keras_lm.special_ids import SpecialIds  # noqa: E402,F401

# Registers the losses, metrics and schedules a compiled model's `.keras` file
# names, so `keras.saving.load_model` works after a plain `import keras_lm`.
# These need Keras only, not TensorFlow.
from keras_lm.training import losses as _losses  # noqa: E402,F401
from keras_lm.training import metrics as _metrics  # noqa: E402,F401
from keras_lm.training import schedules as _schedules  # noqa: E402,F401

_LAZY = {
    "tokenizers",
    "data",
    "training",
    "losses",
    "metrics",
    "schedules",
    "generation",
    "distribute",
    "export",
    "convert",
    "evaluation",
    "visualize",
    "compression",
}


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"keras_lm.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_lm' has no attribute {name!r}")
