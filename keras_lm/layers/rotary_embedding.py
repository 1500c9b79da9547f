"""Rotary position embedding (RoPE, Su et al., 2021).

Notation: B batch, T length, N heads, H head size (even).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_lm")
class RotaryEmbedding(keras.layers.Layer):
    """Rotates pairs of features by a position-dependent angle.

    Uses the "rotate half" pairing (feature i with feature i + H/2).

    Args:
        max_wavelength: the base of the geometric frequency progression.
        scaling_factor: positions are divided by this (linear RoPE scaling).
        **kwargs: base layer arguments.

    Call arguments:
        inputs: [B, T, N, H] queries or keys.
        start_index: absolute position of the first token (for cached decoding).

    Example:
    >>> rope = keras_lm.layers.RotaryEmbedding()
    >>> rope(np.ones((2, 5, 2, 4), "float32")).shape
    (2, 5, 2, 4)
    """

    def __init__(self, max_wavelength=10000, scaling_factor=1.0, **kwargs):
        super().__init__(**kwargs)
        if max_wavelength <= 0:
            raise ValueError(
                "max_wavelength must be positive. "
                f"Received: max_wavelength={max_wavelength}"
            )
        if scaling_factor <= 0:
            raise ValueError(
                "scaling_factor must be positive. "
                f"Received: scaling_factor={scaling_factor}"
            )
        self.max_wavelength = max_wavelength
        self.scaling_factor = scaling_factor
        self.built = True

    def call(self, inputs, start_index=0):
        head_dim = inputs.shape[-1]
        if head_dim is None or head_dim % 2:
            raise ValueError(
                f"RotaryEmbedding needs an even head size. Received: {head_dim}"
            )
        half = head_dim // 2
        length = ops.shape(inputs)[1]
        positions = ops.arange(length, dtype="float32") + ops.cast(
            start_index, "float32"
        )
        positions = positions / self.scaling_factor
        exponents = ops.arange(half, dtype="float32") / half
        inverse_frequencies = 1.0 / ops.power(float(self.max_wavelength), exponents)
        angles = positions[:, None] * inverse_frequencies[None, :]  # [T, H/2]
        angles = ops.concatenate([angles, angles], axis=-1)[
            None, :, None, :
        ]  # [1,T,1,H]
        cos = ops.cast(ops.cos(angles), inputs.dtype)
        sin = ops.cast(ops.sin(angles), inputs.dtype)
        first, second = inputs[..., :half], inputs[..., half:]
        rotated = ops.concatenate([-second, first], axis=-1)
        return inputs * cos + rotated * sin

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_wavelength": self.max_wavelength,
                "scaling_factor": self.scaling_factor,
            }
        )
        return config
