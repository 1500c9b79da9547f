"""Encoder-decoder Transformer (Vaswani et al., 2017) for translation.

Notation: B batch, S source length, T target length, D width, V vocabulary.
"""

import keras

from keras_lm.layers.masks import padding_mask
from keras_lm.layers.transformer_block import TransformerBlock
from keras_lm.models import common

INPUT_NAMES = ("encoder_token_ids", "decoder_token_ids")


@keras.saving.register_keras_serializable(package="keras_lm")
class TransformerSeq2Seq(keras.Model):
    """Encoder-decoder Transformer returning next-token logits.

    A functional Keras model: inputs `{"encoder_token_ids": [B, S],
    "decoder_token_ids": [B, T]}` int ids with 0 as padding, output logits
    [B, T, V] in float32. Source and target share one embedding table, which is
    also the output projection (`tie_embeddings=True`, as in the paper).

    Args:
        vocabulary_size: V, shared by source and target.
        num_encoder_layers: encoder blocks.
        num_decoder_layers: decoder blocks.
        num_heads: attention heads; must divide `hidden_dim`.
        hidden_dim: D.
        intermediate_dim: feed-forward width.
        max_sequence_length: longest source or target accepted.
        dropout: dropout rate on embeddings, sublayers and attention.
        num_kv_heads: key/value heads for grouped-query attention.
        activation: "relu", "gelu" or "swiglu".
        normalize_first: pre-norm blocks (True) or the paper's post-norm.
        position_encoding: "sinusoidal" (paper), "learned" or "rotary".
        tie_embeddings: use the embedding table as the output projection.
        normalization: "layer_norm" or "rms_norm".
        layer_norm_epsilon: epsilon of the normalization layers.
        **kwargs: base model arguments (`name`, `dtype`, ...).

    Example:
    >>> model = keras_lm.models.TransformerSeq2Seq(
    ...     vocabulary_size=100, num_encoder_layers=1, num_decoder_layers=1,
    ...     num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    >>> model({"encoder_token_ids": np.ones((2, 5), "int32"),
    ...        "decoder_token_ids": np.ones((2, 4), "int32")}).shape
    (2, 4, 100)
    """

    def __init__(
        self,
        vocabulary_size,
        num_encoder_layers,
        num_decoder_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        dropout=0.1,
        num_kv_heads=None,
        activation="relu",
        normalize_first=True,
        position_encoding="sinusoidal",
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
        common.check_positive_int("num_encoder_layers", num_encoder_layers)
        common.check_positive_int("num_decoder_layers", num_decoder_layers)
        dtype = kwargs.pop("dtype", None)
        rotary = 10000 if position_encoding == "rotary" else None

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

        def block(name, causal):
            return TransformerBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                num_kv_heads=num_kv_heads,
                dropout=dropout,
                activation=activation,
                normalize_first=normalize_first,
                use_causal_mask=causal,
                use_cross_attention=causal,
                normalization=normalization,
                layer_norm_epsilon=layer_norm_epsilon,
                rotary_max_wavelength=rotary,
                dtype=dtype,
                name=name,
            )

        encoder_blocks = [
            block(f"encoder_block_{i}", False) for i in range(num_encoder_layers)
        ]
        decoder_blocks = [
            block(f"decoder_block_{i}", True) for i in range(num_decoder_layers)
        ]
        encoder_norm, decoder_norm = (
            common.make_final_norm(
                normalize_first, normalization, layer_norm_epsilon, dtype, name
            )
            for name in ("encoder_norm", "decoder_norm")
        )

        # Functional graph.
        encoder_ids = keras.Input(
            shape=(None,), dtype="int32", name="encoder_token_ids"
        )
        decoder_ids = keras.Input(
            shape=(None,), dtype="int32", name="decoder_token_ids"
        )
        encoder_mask = padding_mask(encoder_ids)
        decoder_mask = padding_mask(decoder_ids)
        x = common.embed(
            token_embedding, position_layer, embedding_dropout, encoder_ids
        )
        for encoder_block in encoder_blocks:
            x = encoder_block(x, padding_mask=encoder_mask)
        encoder_outputs = x if encoder_norm is None else encoder_norm(x)
        y = common.embed(
            token_embedding, position_layer, embedding_dropout, decoder_ids
        )
        for decoder_block in decoder_blocks:
            y = decoder_block(
                y,
                padding_mask=decoder_mask,
                encoder_outputs=encoder_outputs,
                encoder_padding_mask=encoder_mask,
            )
        if decoder_norm is not None:
            y = decoder_norm(y)
        logits = common.to_logits(token_embedding, y)
        super().__init__(
            inputs={"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids},
            outputs=logits,
            dtype=dtype,
            **kwargs,
        )

        self.token_embedding = token_embedding
        self.position_layer = position_layer
        self.embedding_dropout = embedding_dropout
        self.encoder_blocks = encoder_blocks
        self.decoder_blocks = decoder_blocks
        self.encoder_norm = encoder_norm
        self.decoder_norm = decoder_norm

        self.vocabulary_size = vocabulary_size
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
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

    def encode(self, encoder_token_ids, training=False):
        """[B, S] ids -> (encoder outputs [B, S, D], padding mask [B, S])."""
        mask = padding_mask(encoder_token_ids)
        x = common.embed(
            self.token_embedding,
            self.position_layer,
            self.embedding_dropout,
            encoder_token_ids,
            training=training,
        )
        for encoder_block in self.encoder_blocks:
            x = encoder_block(x, padding_mask=mask, training=training)
        if self.encoder_norm is not None:
            x = self.encoder_norm(x)
        return x, mask

    def cross_attention_caches(self, encoder_outputs):
        """Per decoder block, the `(key, value)` of the encoder outputs."""
        return tuple(
            b.cross_attention_cache_for(encoder_outputs) for b in self.decoder_blocks
        )

    def empty_cache(self, batch_size, max_length):
        """Zeroed self-attention caches for `max_length` target positions."""
        return common.empty_cache(
            self.decoder_blocks, batch_size, max_length, self.compute_dtype
        )

    def decode_step(
        self,
        decoder_token_ids,
        cache,
        cache_update_index,
        cross_attention_caches,
        encoder_padding_mask,
    ):
        """Run the decoder on new tokens at `cache_update_index`.

        Returns (logits [B, T, V], updated cache).
        """
        y = common.embed(
            self.token_embedding,
            self.position_layer,
            self.embedding_dropout,
            decoder_token_ids,
            start_index=cache_update_index,
            training=False,
        )
        new_cache = []
        for decoder_block, layer_cache, cross_cache in zip(
            self.decoder_blocks, cache, cross_attention_caches
        ):
            y, layer_cache = decoder_block(
                y,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=layer_cache,
                cross_attention_cache=cross_cache,
                cache_update_index=cache_update_index,
                training=False,
            )
            new_cache.append(layer_cache)
        if self.decoder_norm is not None:
            y = self.decoder_norm(y)
        return common.to_logits(self.token_embedding, y), tuple(new_cache)

    def cross_attention_scores(self, encoder_token_ids, decoder_token_ids):
        """Last decoder block's cross-attention probabilities [B, N, T, S]."""
        encoder_outputs, encoder_mask = self.encode(encoder_token_ids)
        decoder_mask = padding_mask(decoder_token_ids)
        y = common.embed(
            self.token_embedding,
            self.position_layer,
            self.embedding_dropout,
            decoder_token_ids,
            training=False,
        )
        scores = None
        for decoder_block in self.decoder_blocks:
            y, scores = decoder_block(
                y,
                padding_mask=decoder_mask,
                encoder_outputs=encoder_outputs,
                encoder_padding_mask=encoder_mask,
                return_attention_scores=True,
            )
        return scores

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "vocabulary_size": self.vocabulary_size,
            "num_encoder_layers": self.num_encoder_layers,
            "num_decoder_layers": self.num_decoder_layers,
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
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def generate(self, encoder_token_ids, **options):
        """Translate right-padded sources [B, S]; see `keras_lm.generation.generate`.

        Targets start from BOS (2). Options are those of
        `keras_lm.generation.generate`, including `source_length_ratio` and
        `source_length_offset` to bound each target by its source's length.

        Example:
        >>> model.generate(source_ids, method="beam", num_beams=4,
        ...                source_length_ratio=1.5, source_length_offset=10)
        """
        from keras_lm.generation import generate

        return generate(self, encoder_token_ids, **options)
