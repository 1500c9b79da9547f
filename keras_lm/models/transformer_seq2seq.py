"""Encoder-decoder Transformer (Vaswani et al., 2017) for translation.

Notation: B batch, S source length, T target length, D width, V vocabulary.
"""

import math

import keras
from keras import ops

from keras_lm.generation.defaults import check_generation_config
from keras_lm.layers.logit_bias import LogitBias
from keras_lm.layers.masks import padding_mask
from keras_lm.layers.position_encoding import LAYOUTS, PositionEncoding
from keras_lm.layers.token_embedding import TokenEmbedding
from keras_lm.layers.transformer_block import TransformerBlock
from keras_lm.layers.validation import check_choice
from keras_lm.models import common
from keras_lm.models.base import TransformerModel, special_ids_for


@keras.saving.register_keras_serializable(package="keras_lm")
class TransformerSeq2Seq(TransformerModel):
    """Encoder-decoder Transformer returning next-token logits.

    A functional Keras model: inputs `{"encoder_token_ids": [B, S],
    "decoder_token_ids": [B, T]}` int ids, right-padded with
    `special_ids.pad_id`, output logits [B, T, V] in float32. Sources end with
    EOS; targets start with `special_ids.start_id`. The encoder's padding mask
    comes from the pad id; the decoder needs none (causal attention keeps
    padding after a row's end from reaching its real positions, and a decoder
    start id equal to the pad id, as in Marian, is attended normally). By
    default source and target share one embedding table, which is also the
    output projection (`tie_embeddings=True`, as in the paper).

    The options after `layer_norm_epsilon` describe converted checkpoints:
    Marian / OPUS-MT is post-norm (`normalize_first=False`, no final norms)
    with `activation="silu"`, `sinusoid_layout="concat"`, `logit_bias=True`
    and, for some language pairs, `share_embeddings=False`.

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
        activation: "relu", "gelu", "silu" or "swiglu".
        normalize_first: pre-norm blocks (True) or the paper's post-norm.
        position_encoding: "sinusoidal" (paper), "learned" or "rotary".
        tie_embeddings: use the embedding table as the output projection.
        normalization: "layer_norm" or "rms_norm".
        layer_norm_epsilon: epsilon of the normalization layers.
        scale_embeddings: multiply token embeddings by sqrt(D) (Vaswani et
            al., 2017, section 3.4).
        sinusoid_layout: "interleaved" (the paper's) or "concat" (sines in
            the first half of the features, cosines in the second, as Marian);
            see `keras_lm.layers.PositionEncoding`.
        share_embeddings: one token table for source and target; False gives
            the encoder its own table (of the same vocabulary size).
        logit_bias: add a trainable bias [V] to the logits (Marian's
            `final_logits_bias`).
        special_ids: the vocabulary's `keras_lm.SpecialIds` (or its dict); it
            needs a pad id, an EOS id and a decoder start id (BOS). None for
            keras_lm's default pad 0 / unk 1 / bos 2 / eos 3.
        generation_config: a dict of `generate()` / `translate_texts()`
            defaults (e.g. `{"method": "beam", "num_beams": 4}`), as a
            converted checkpoint's `generation_config.json` sets them;
            arguments given to `generate()` take precedence.
        **kwargs: base model arguments (`name`, `dtype`, ...).

    Example:
    >>> model = keras_lm.models.TransformerSeq2Seq(
    ...     vocabulary_size=100, num_encoder_layers=1, num_decoder_layers=1,
    ...     num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=16)
    >>> model({"encoder_token_ids": np.ones((2, 5), "int32"),
    ...        "decoder_token_ids": np.ones((2, 4), "int32")}).shape
    (2, 4, 100)
    """

    INPUT_NAMES = ("encoder_token_ids", "decoder_token_ids")

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
        scale_embeddings=True,
        sinusoid_layout="interleaved",
        share_embeddings=True,
        logit_bias=False,
        special_ids=None,
        generation_config=None,
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
        check_choice("sinusoid_layout", sinusoid_layout, LAYOUTS)
        special_ids = special_ids_for(
            special_ids, vocabulary_size, needs=("pad_id", "eos_id", "start_id")
        )
        generation_config = check_generation_config(generation_config)
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
        if position_encoding == "sinusoidal" and sinusoid_layout != "interleaved":
            position_layer = PositionEncoding(
                layout=sinusoid_layout, dtype=dtype, name="position_encoding"
            )
        source_embedding = token_embedding
        if not share_embeddings:
            source_embedding = TokenEmbedding(
                vocabulary_size,
                hidden_dim,
                dtype=dtype,
                name="source_token_embedding",
            )
        bias_layer = (
            LogitBias(vocabulary_size, name="logit_bias") if logit_bias else None
        )

        def embed(embedding, token_ids, start_index=0, training=None):
            return _embed(
                embedding,
                position_layer,
                embedding_dropout,
                scale_embeddings,
                token_ids,
                start_index,
                training,
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
        encoder_mask = padding_mask(encoder_ids, special_ids.pad_id)
        x = embed(source_embedding, encoder_ids)
        for encoder_block in encoder_blocks:
            x = encoder_block(x, padding_mask=encoder_mask)
        encoder_outputs = x if encoder_norm is None else encoder_norm(x)
        y = embed(token_embedding, decoder_ids)
        for decoder_block in decoder_blocks:
            y = decoder_block(
                y,
                encoder_outputs=encoder_outputs,
                encoder_padding_mask=encoder_mask,
            )
        if decoder_norm is not None:
            y = decoder_norm(y)
        logits = common.to_logits(token_embedding, y)
        if bias_layer is not None:
            logits = bias_layer(logits)
        super().__init__(
            inputs={"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids},
            outputs=logits,
            dtype=dtype,
            **kwargs,
        )

        self.token_embedding = token_embedding
        self.source_token_embedding = source_embedding
        self.logit_bias_layer = bias_layer
        self.position_layer = position_layer
        self.embedding_dropout = embedding_dropout
        self.encoder_blocks = encoder_blocks
        self.decoder_blocks = decoder_blocks
        self.encoder_norm = encoder_norm
        self.decoder_norm = decoder_norm

        self._remember_config(locals())

    def _embed(self, embedding, token_ids, start_index=0, training=None):
        return _embed(
            embedding,
            self.position_layer,
            self.embedding_dropout,
            self.scale_embeddings,
            token_ids,
            start_index,
            training,
        )

    def _logits(self, y, output_kernel=None):
        logits = common.to_logits(self.token_embedding, y, output_kernel)
        if self.logit_bias_layer is not None:
            logits = self.logit_bias_layer(logits)
        return logits

    # Incremental decoding API, used by keras_lm.generation.

    def encode(self, encoder_token_ids, training=False):
        """[B, S] ids -> (encoder outputs [B, S, D], padding mask [B, S])."""
        mask = padding_mask(encoder_token_ids, self.special_ids.pad_id)
        x = self._embed(
            self.source_token_embedding, encoder_token_ids, training=training
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
        output_kernel=None,
    ):
        """Run the decoder on new tokens at `cache_update_index`.

        `output_kernel` is `self.output_kernel()`, computed once per decode.
        Returns (logits [B, T, V], updated cache).
        """
        y = self._embed(
            self.token_embedding,
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
        return self._logits(y, output_kernel), tuple(new_cache)

    def cross_attention_scores(self, encoder_token_ids, decoder_token_ids):
        """Last decoder block's cross-attention probabilities [B, N, T, S]."""
        encoder_outputs, encoder_mask = self.encode(encoder_token_ids)
        y = self._embed(self.token_embedding, decoder_token_ids, training=False)
        scores = None
        for decoder_block in self.decoder_blocks:
            y, scores = decoder_block(
                y,
                encoder_outputs=encoder_outputs,
                encoder_padding_mask=encoder_mask,
                return_attention_scores=True,
            )
        return scores


def _embed(
    embedding,
    position_layer,
    dropout_layer,
    scale,
    token_ids,
    start_index=0,
    training=None,
):
    """Token embeddings (times sqrt(D) when `scale`) plus positions."""
    x = embedding(token_ids)  # [B, T, D]
    if scale:
        x = x * ops.cast(math.sqrt(embedding.hidden_dim), x.dtype)
    if position_layer is not None:
        x = x + position_layer(x, start_index=start_index)
    return dropout_layer(x, training=training)
