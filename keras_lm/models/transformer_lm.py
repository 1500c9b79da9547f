"""Decoder-only Transformer language model.

Notation: B batch, T length, D width, V vocabulary.
"""

import keras

from keras_lm.generation.defaults import check_generation_config
from keras_lm.layers.transformer_block import TransformerBlock
from keras_lm.models import common
from keras_lm.models.base import TransformerModel, special_ids_for


@keras.saving.register_keras_serializable(package="keras_lm")
class TransformerLM(TransformerModel):
    """Causal (decoder-only) Transformer returning next-token logits.

    A functional Keras model: inputs `{"token_ids": [B, T]}` int ids, output
    logits [B, T, V] in float32. Rows are right-padded (with any id): causal
    attention keeps padding after a row's end from reaching its real
    positions, so no padding mask is needed. A text starts with
    `special_ids.text_start_id` (BOS) and ends with EOS, in training data,
    prompts and exports alike.

    Args:
        vocabulary_size: V.
        num_layers: decoder blocks.
        num_heads: attention heads; must divide `hidden_dim`.
        hidden_dim: D.
        intermediate_dim: feed-forward width.
        max_sequence_length: longest sequence accepted (prompt + generation).
        dropout: dropout rate on embeddings, sublayers and attention.
        num_kv_heads: key/value heads for grouped-query attention.
        activation: "relu", "gelu", "swiglu", "gelu_approximate" or "silu"
            (see `TransformerBlock`).
        normalize_first: pre-norm blocks (True) or post-norm.
        position_encoding: "rotary", "learned" (GPT-2) or "sinusoidal".
        tie_embeddings: use the embedding table as the output projection.
        normalization: "layer_norm" or "rms_norm".
        layer_norm_epsilon: epsilon of the normalization layers.
        scale_embeddings: multiply token embeddings by sqrt(D) (Vaswani et
            al., 2017); GPT-2 does not.
        generation_config: a dict of `generate()` defaults for this model
            (e.g. `{"method": "beam", "num_beams": 4}`), as a converted
            checkpoint's `generation_config.json` sets them; arguments given
            to `generate()` take precedence.
        special_ids: the vocabulary's `keras_lm.SpecialIds` (or its dict);
            None for keras_lm's default pad 0 / unk 1 / bos 2 / eos 3.
        **kwargs: base model arguments (`name`, `dtype`, ...).

    Example:
    >>> model = keras_lm.models.TransformerLM(
    ...     vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=16)
    >>> model({"token_ids": np.ones((2, 5), "int32")}).shape
    (2, 5, 100)
    """

    INPUT_NAMES = ("token_ids",)

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
        scale_embeddings=True,
        generation_config=None,
        special_ids=None,
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
        special_ids = special_ids_for(special_ids, vocabulary_size)
        generation_config = check_generation_config(generation_config)
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
        x = common.embed(
            token_embedding,
            position_layer,
            embedding_dropout,
            token_ids,
            scale=scale_embeddings,
        )
        for block in blocks:
            x = block(x)
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

        self._remember_config(locals())

    # Incremental decoding API, used by keras_lm.generation.

    def empty_cache(self, batch_size, max_length):
        """Zeroed self-attention caches for `max_length` positions."""
        return common.empty_cache(
            self.blocks, batch_size, max_length, self.compute_dtype
        )

    def decode_step(self, token_ids, cache, cache_update_index, output_kernel=None):
        """Run the model on new tokens at `cache_update_index` (prefill or one step).

        `output_kernel` is `self.output_kernel()`, computed once per decode.
        Returns (logits [B, T, V], updated cache).
        """
        x = common.embed(
            self.token_embedding,
            self.position_layer,
            self.embedding_dropout,
            token_ids,
            start_index=cache_update_index,
            training=False,
            scale=self.scale_embeddings,
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
        logits = common.to_logits(self.token_embedding, x, output_kernel)
        return logits, tuple(new_cache)
