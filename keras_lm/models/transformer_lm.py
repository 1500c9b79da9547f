"""Decoder-only Transformer language model.

Notation: B batch, T length, D width, V vocabulary.
"""

import keras

from keras_lm.layers.masks import padding_mask
from keras_lm.layers.transformer_block import TransformerBlock
from keras_lm.models import common

INPUT_NAMES = ("token_ids",)


@keras.saving.register_keras_serializable(package="keras_lm")
class TransformerLM(keras.Model):
    """Causal (decoder-only) Transformer returning next-token logits.

    A functional Keras model: inputs `{"token_ids": [B, T]}` int ids with 0 as
    padding, output logits [B, T, V] in float32.

    Args:
        vocabulary_size: V.
        num_layers: decoder blocks.
        num_heads: attention heads; must divide `hidden_dim`.
        hidden_dim: D.
        intermediate_dim: feed-forward width.
        max_sequence_length: longest sequence accepted (prompt + generation).
        dropout: dropout rate on embeddings, sublayers and attention.
        num_kv_heads: key/value heads for grouped-query attention.
        activation: "relu", "gelu" or "swiglu".
        normalize_first: pre-norm blocks (True) or post-norm.
        position_encoding: "rotary", "learned" (GPT-2) or "sinusoidal".
        tie_embeddings: use the embedding table as the output projection.
        normalization: "layer_norm" or "rms_norm".
        layer_norm_epsilon: epsilon of the normalization layers.
        **kwargs: base model arguments (`name`, `dtype`, ...).

    Example:
    >>> model = keras_lm.models.TransformerLM(
    ...     vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=16)
    >>> model({"token_ids": np.ones((2, 5), "int32")}).shape
    (2, 5, 100)
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=1024,
        dropout=0.0,
        num_kv_heads=None,
        activation="gelu",
        normalize_first=True,
        position_encoding="rotary",
        tie_embeddings=True,
        normalization="layer_norm",
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        common.check_model_arguments(
            num_heads,
            hidden_dim,
            intermediate_dim,
            vocabulary_size,
            max_sequence_length,
            dropout,
            position_encoding,
            num_kv_heads,
        )
        common.check_positive_int("num_layers", num_layers)
        dtype = kwargs.pop("dtype", None)

        token_embedding, position_layer, embedding_dropout = (
            common.make_embedding_layers(
                vocabulary_size,
                hidden_dim,
                tie_embeddings,
                position_encoding,
                max_sequence_length,
                dropout,
                dtype,
            )
        )
        blocks = [
            TransformerBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                num_kv_heads=num_kv_heads,
                dropout=dropout,
                activation=activation,
                normalize_first=normalize_first,
                use_causal_mask=True,
                normalization=normalization,
                layer_norm_epsilon=layer_norm_epsilon,
                rotary_max_wavelength=10000 if position_encoding == "rotary" else None,
                dtype=dtype,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        final_norm = common.make_final_norm(
            normalize_first, normalization, layer_norm_epsilon, dtype, "final_norm"
        )

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        mask = padding_mask(token_ids)
        x = common.embed(token_embedding, position_layer, embedding_dropout, token_ids)
        for block in blocks:
            x = block(x, padding_mask=mask)
        if final_norm is not None:
            x = final_norm(x)
        logits = common.to_logits(token_embedding, x)
        super().__init__(
            inputs={"token_ids": token_ids}, outputs=logits, dtype=dtype, **kwargs
        )

        self.token_embedding = token_embedding
        self.position_layer = position_layer
        self.embedding_dropout = embedding_dropout
        self.blocks = blocks
        self.final_norm = final_norm

        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.num_kv_heads = num_kv_heads
        self.activation = activation
        self.normalize_first = normalize_first
        self.position_encoding = position_encoding
        self.tie_embeddings = tie_embeddings
        self.normalization = normalization
        self.layer_norm_epsilon = layer_norm_epsilon

    def __call__(self, inputs, *args, **kwargs):
        inputs = common.check_token_inputs(
            inputs, INPUT_NAMES, self.max_sequence_length, self.vocabulary_size
        )
        return super().__call__(inputs, *args, **kwargs)

    # Incremental decoding API, used by keras_lm.generation.

    def empty_cache(self, batch_size, max_length):
        """Zeroed self-attention caches for `max_length` positions."""
        return common.empty_cache(
            self.blocks, batch_size, max_length, self.compute_dtype
        )

    def decode_step(self, token_ids, cache, cache_update_index):
        """Run the model on new tokens at `cache_update_index` (prefill or one step).

        Returns (logits [B, T, V], updated cache).
        """
        x = common.embed(
            self.token_embedding,
            self.position_layer,
            self.embedding_dropout,
            token_ids,
            start_index=cache_update_index,
            training=False,
        )
        new_cache = []
        for block, layer_cache in zip(self.blocks, cache):
            x, layer_cache = block(
                x,
                self_attention_cache=layer_cache,
                cache_update_index=cache_update_index,
                training=False,
            )
            new_cache.append(layer_cache)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return common.to_logits(self.token_embedding, x), tuple(new_cache)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "num_kv_heads": self.num_kv_heads,
            "activation": self.activation,
            "normalize_first": self.normalize_first,
            "position_encoding": self.position_encoding,
            "tie_embeddings": self.tie_embeddings,
            "normalization": self.normalization,
            "layer_norm_epsilon": self.layer_norm_epsilon,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def generate(self, token_ids, **options):
        """Continue right-padded prompts [B, P]; see `keras_lm.generation.generate`.

        Options are those of `keras_lm.generation.generate`: `max_new_tokens`,
        `method` ("greedy", "sample", "beam"), `num_beams`, `length_penalty`,
        `top_k`, `top_p`, `temperature`, `seed`, `eos_id`, `return_all_beams`.

        Example:
        >>> model.generate([[2, 17, 9]], max_new_tokens=8, method="beam")
        """
        from keras_lm.generation import generate

        return generate(self, token_ids, **options)
