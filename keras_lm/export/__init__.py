"""TensorFlow SavedModels that take and return plain strings.

Loading an export needs TensorFlow and `import tensorflow_text` (which
registers the SentencePiece ops), nothing else: not Keras, not keras_lm.
"""

from keras_lm.export.savedmodel import (
    export_generator,
    export_translator,
    load_exported,
)

__all__ = ["export_generator", "export_translator", "load_exported"]
