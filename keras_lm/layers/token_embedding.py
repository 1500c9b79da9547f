"""Token embedding whose transpose is the output projection (tied weights).

Notation: B batch, T length, V vocabulary size, D width.
"""

import keras

from keras_lm.layers.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_lm")
class TokenEmbedding(keras.layers.ReversibleEmbedding):
    """`keras.layers.ReversibleEmbedding` with keras-hub style argument names.

    The forward direction maps ids [B, T] to [B, T, D]. With `reverse=True` it
    maps [B, T, D] to logits [B, T, V] through the same table (or a separate
    one when `tie_weights=False`). Int8 quantization and LoRA come from the
    Keras base class. The models multiply embeddings by sqrt(D) (Vaswani et
    al., 2017, section 3.4) outside this layer, because a quantized layer
    runs the base class's call, not an override.

    Args:
        vocabulary_size: V.
        hidden_dim: D.
        tie_weights: share the table with the output projection.
        embeddings_initializer: defaults to normal(stddev=D^-0.5), which with
            the models' sqrt(D) scale gives unit-variance inputs and small
            initial logits.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: int ids [B, T], or [B, T, D] features with `reverse=True`.
        reverse: project features to vocabulary logits.

    Under mixed precision the reverse projection computes in float32: its
    inputs and the float32 table are multiplied unrounded (`reverse_dtype`
    defaults to "float32" and the layer's variables are never autocast), so
    logits are not rounded to bfloat16 before the softmax, whether the layer
    runs inside a model or alone (as in cached decoding). The forward lookup
    still returns the compute dtype.

    Example:
    >>> embedding = keras_lm.layers.TokenEmbedding(100, 8)
    >>> embedding(np.array([[1, 2, 0]])).shape
    (1, 3, 8)
    >>> embedding(np.ones((1, 3, 8)), reverse=True).shape
    (1, 3, 100)
    """

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        tie_weights=True,
        embeddings_initializer=None,
        **kwargs,
    ):
        check_positive_int("vocabulary_size", vocabulary_size)
        check_positive_int("hidden_dim", hidden_dim)
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.RandomNormal(
                stddev=hidden_dim**-0.5
            )
        for key in ("input_dim", "output_dim"):
            kwargs.pop(key, None)
        if kwargs.get("reverse_dtype") is None:
            kwargs["reverse_dtype"] = "float32"
        super().__init__(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            tie_weights=tie_weights,
            embeddings_initializer=embeddings_initializer,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim

    def add_weight(self, *args, **kwargs):
        # Keras reads float32 variables in the compute dtype inside a layer
        # called outside a model (decode_step calls this layer alone): the
        # reverse projection would then multiply a bfloat16-rounded table.
        kwargs["autocast"] = False
        return super().add_weight(*args, **kwargs)

    def quantize(self, mode=None, type_check=True, config=None):
        # Keras refuses subclasses by default because they may override call();
        # this one does not, so the base class's quantized path is exact.
        super().quantize(mode, type_check=False, config=config)

    def get_config(self):
        config = super().get_config()
        for key in ("input_dim", "output_dim"):
            config.pop(key, None)
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
            }
        )
        return config
