"""A learned bias added to output logits (Marian's `final_logits_bias`).

Notation: B batch, T length, V vocabulary size.
"""

import keras
from keras import ops

from keras_lm.layers.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_lm")
class LogitBias(keras.layers.Layer):
    """Adds a trainable per-token bias [V] to logits [B, T, V].

    Marian (OPUS-MT) models add one after their tied output projection; it
    starts at zero. Computes in float32 like the logits it is added to.

    Args:
        vocabulary_size: V.
        **kwargs: base layer arguments.

    Call arguments:
        logits: [B, T, V].

    Example:
    >>> keras_lm.layers.LogitBias(100)(np.zeros((2, 3, 100), "float32")).shape
    (2, 3, 100)
    """

    def __init__(self, vocabulary_size, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        check_positive_int("vocabulary_size", vocabulary_size)
        self.vocabulary_size = vocabulary_size

    def build(self, input_shape=None):
        self.bias = self.add_weight(
            name="bias",
            shape=(self.vocabulary_size,),
            initializer="zeros",
            autocast=False,
        )
        self.built = True

    def call(self, logits):
        return ops.cast(logits, "float32") + self.bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_size": self.vocabulary_size})
        return config
