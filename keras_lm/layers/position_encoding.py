"""Sinusoidal position encoding (Vaswani et al., 2017, section 3.5).

Notation: B batch, T length, D width (even).
"""

import keras
from keras import ops

LAYOUTS = ("interleaved", "concat")


@keras.saving.register_keras_serializable(package="keras_lm")
class PositionEncoding(keras.layers.Layer):
    """Fixed sinusoidal encodings of angles p / w^(2i/D), i in [0, D/2).

    With `layout="interleaved"` (the paper's), PE[p, 2i] = sin and
    PE[p, 2i+1] = cos. With `layout="concat"` (Marian / OPUS-MT, Pegasus),
    the sines fill the first D/2 features and the cosines the second half:
    PE[p, i] = sin, PE[p, D/2 + i] = cos. Positions count from 0.

    Returns the encodings (same shape as the inputs), to be added to the token
    embeddings. Has no weights.

    Args:
        max_wavelength: w, the longest wavelength (10000 in the paper).
        layout: "interleaved" or "concat", where the cosines go.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: [B, T, D] embeddings; only their shape is used.
        start_index: absolute position of the first token (for cached decoding).

    Example:
    >>> x = np.zeros((2, 5, 8), "float32")
    >>> (x + keras_lm.layers.PositionEncoding()(x)).shape
    (2, 5, 8)
    """

    def __init__(self, max_wavelength=10000, layout="interleaved", **kwargs):
        super().__init__(**kwargs)
        if max_wavelength <= 0:
            raise ValueError(
                "max_wavelength must be positive. "
                f"Received: max_wavelength={max_wavelength}"
            )
        if layout not in LAYOUTS:
            raise ValueError(
                f"layout must be one of {list(LAYOUTS)}. Received: layout={layout!r}"
            )
        self.max_wavelength = max_wavelength
        self.layout = layout
        self.built = True

    def call(self, inputs, start_index=0):
        width = inputs.shape[-1]
        if width is None or width % 2:
            raise ValueError(
                f"PositionEncoding needs an even feature width. Received: {width}"
            )
        length = ops.shape(inputs)[1]
        positions = ops.arange(length, dtype="float32") + ops.cast(
            start_index, "float32"
        )
        exponents = ops.arange(0, width, 2, dtype="float32") / width
        inverse_timescales = 1.0 / ops.power(float(self.max_wavelength), exponents)
        angles = positions[:, None] * inverse_timescales[None, :]  # [T, D/2]
        if self.layout == "concat":
            encoding = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        else:
            # Interleave so that even features are sines and odd ones cosines.
            encoding = ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1)
            encoding = ops.reshape(encoding, (length, width))  # [T, D]
        encoding = ops.cast(encoding, self.compute_dtype)
        return ops.broadcast_to(encoding[None], ops.shape(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength, "layout": self.layout})
        return config
