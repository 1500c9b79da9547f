"""Learned absolute position embedding.

Notation: B batch, T length, L max_sequence_length, D width.
"""

import keras
from keras import ops

from keras_lm.layers.validation import check_positive_int, check_sequence_length


@keras.saving.register_keras_serializable(package="keras_lm")
class PositionEmbedding(keras.layers.Layer):
    """A trainable [L, D] table; returns the rows for positions of the inputs.

    Args:
        sequence_length: L, the longest sequence the table covers.
        initializer: initializer of the table.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: [B, T, D] embeddings; only their shape is used.
        start_index: absolute position of the first token (for cached decoding).

    Example:
    >>> x = np.zeros((2, 5, 8), "float32")
    >>> keras_lm.layers.PositionEmbedding(sequence_length=16)(x).shape
    (2, 5, 8)
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        check_positive_int("sequence_length", sequence_length)
        self.sequence_length = sequence_length
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, input_shape[-1]),
            initializer=self.initializer,
            trainable=True,
        )
        self.built = True

    def call(self, inputs, start_index=0):
        check_sequence_length("inputs", inputs.shape[1], self.sequence_length)
        length = ops.shape(inputs)[1]
        width = ops.shape(inputs)[-1]
        table = ops.convert_to_tensor(self.position_embeddings)
        rows = ops.slice(table, (ops.cast(start_index, "int32"), 0), (length, width))
        return ops.broadcast_to(
            ops.cast(rows, self.compute_dtype)[None], ops.shape(inputs)
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
