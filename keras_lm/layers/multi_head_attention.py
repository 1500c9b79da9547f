"""Multi-head attention with boolean masks, grouped-query heads and a KV cache.

Notation: B batch, T query length, S key length, D model width, N query heads,
K key/value heads (N % K == 0), H head size.
"""

import math

import keras
from keras import ops

from keras_lm.layers.masks import merge_masks
from keras_lm.layers.rotary_embedding import RotaryEmbedding
from keras_lm.layers.token_projection import apply_per_token
from keras_lm.layers.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_lm")
class MultiHeadAttention(keras.layers.Layer):
    """Self- or cross-attention (Vaswani et al., 2017) with a key/value cache.

    Projections are `keras.layers.EinsumDense` with the same kernel shapes as
    `keras.layers.MultiHeadAttention` ([D, N, H] in, [N, H, D] out), so weights
    copy across and Keras' `quantize("int8")` and `enable_lora()` apply.

    Args:
        num_heads: N, number of query heads.
        key_dim: H, size of each head.
        num_kv_heads: K, number of key/value heads for grouped-query attention
            (Ainslie et al., 2023). Defaults to `num_heads`; must divide it.
        dropout: dropout rate on the attention probabilities.
        use_bias: whether the projections have biases.
        output_dim: width of the output. Defaults to the query width D.
        rotary_max_wavelength: if set, rotary position embedding (RoPE) with
            this base is applied to queries and keys.
        kernel_initializer: initializer for the projection kernels.
        bias_initializer: initializer for the projection biases.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        query: [B, T, D] queries.
        value: [B, S, Dv] keys/values for cross-attention; None for
            self-attention.
        value_mask: [B, S] bool, True at real (non-padding) keys.
        attention_mask: [B, T, S] bool, True where a query may attend a key.
        use_causal_mask: forbid attending to later positions.
        cache: a `(key, value)` pair of [B, K, S_max, H] tensors (heads
            before positions: the layout a decoding step's matmuls read, so
            XLA copies nothing per step; see `_attend_cached`). With
            `cache_update_index`, this is a self-attention cache: the new keys
            and values are written at that index and the queries attend over
            the cache (positions past the written ones are masked). Without it,
            the cache holds precomputed cross-attention keys/values and `value`
            is not projected again.
        cache_update_index: int or scalar tensor, the absolute position of the
            first query.
        return_attention_scores: also return [B, N, T, S] probabilities.
        training: whether dropout is active.

    Returns:
        `output` [B, T, D_out]; `(output, scores)` with
        `return_attention_scores`; `(output, new_cache)` when `cache` is given.

    Example:
    >>> attention = keras_lm.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = np.ones((2, 5, 8), "float32")
    >>> attention(x, use_causal_mask=True).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        num_kv_heads=None,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        rotary_max_wavelength=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_positive_int("key_dim", key_dim)
        if num_kv_heads is not None:
            check_positive_int("num_kv_heads", num_kv_heads)
            if num_heads % num_kv_heads:
                raise ValueError(
                    "num_heads must be a multiple of num_kv_heads. Received: "
                    f"num_heads={num_heads}, num_kv_heads={num_kv_heads}"
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
        if output_dim is not None:
            check_positive_int("output_dim", output_dim)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.num_kv_heads = num_kv_heads
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dim = output_dim
        self.rotary_max_wavelength = rotary_max_wavelength
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self._kv_heads = num_kv_heads or num_heads

    def _projection(self, name, equation, output_shape, bias_axes):
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, query_shape, value_shape=None):
        query_width = query_shape[-1]
        value_shape = query_shape if value_shape is None else value_shape
        # Projections see tokens flattened to one axis (see token_projection).
        head_shape = (self.num_heads, self.key_dim)
        kv_shape = (self._kv_heads, self.key_dim)
        self.query_dense = self._projection("query", "ad,dnh->anh", head_shape, "nh")
        self.query_dense.build((None, query_width))
        self.key_dense = self._projection("key", "ad,dkh->akh", kv_shape, "kh")
        self.key_dense.build((None, value_shape[-1]))
        self.value_dense = self._projection("value", "ad,dkh->akh", kv_shape, "kh")
        self.value_dense.build((None, value_shape[-1]))
        self.output_dense = self._projection(
            "attention_output",
            "anh,nhd->ad",
            (self.output_dim or query_width,),
            "d",
        )
        self.output_dense.build((None, self.num_heads, self.key_dim))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.rotary = None
        if self.rotary_max_wavelength is not None:
            self.rotary = RotaryEmbedding(
                max_wavelength=self.rotary_max_wavelength,
                dtype=self.dtype_policy,
                name="rotary_embedding",
            )
        self.built = True

    def project_key_value(self, value):
        """[B, S, Dv] -> a `(key, value)` cache of [B, K, S, H], for cross-attention."""
        key = apply_per_token(self.key_dense, value)  # [B, S, K, H]
        value = apply_per_token(self.value_dense, value)
        return heads_first(key), heads_first(value)

    def call(
        self,
        query,
        value=None,
        value_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        cache=None,
        cache_update_index=None,
        return_attention_scores=False,
        training=None,
    ):
        if cache is not None and return_attention_scores:
            raise ValueError(
                "return_attention_scores is not supported together with a cache. "
                "Run a full forward pass to inspect attention."
            )
        is_self_attention = value is None and (
            cache is None or cache_update_index is not None
        )
        start = 0 if cache_update_index is None else cache_update_index
        query_length = ops.shape(query)[1]

        if is_self_attention and self._can_fuse_projections(query):
            q, k, v = self._project_fused(query)
        else:
            q = apply_per_token(self.query_dense, query)  # [B, T, N, H]
            if cache is not None and cache_update_index is None:
                k, v = cache  # precomputed cross-attention keys/values [B, K, S, H]
            else:
                source = query if value is None else value
                k = apply_per_token(self.key_dense, source)  # [B, S, K, H]
                v = apply_per_token(self.value_dense, source)  # [B, S, K, H]
        if self.rotary is not None and is_self_attention:
            q = self.rotary(q, start_index=start)
            k = self.rotary(k, start_index=start)

        causal = use_causal_mask
        if cache is not None and cache_update_index is not None:
            key_cache, value_cache = cache
            zero = ops.zeros((), "int32")
            index = ops.cast(cache_update_index, "int32")
            update_at = [zero, zero, index, zero]
            k = heads_first(ops.cast(k, key_cache.dtype))  # [B, K, T, H]
            v = heads_first(ops.cast(v, value_cache.dtype))
            k = ops.slice_update(key_cache, update_at, k)
            v = ops.slice_update(value_cache, update_at, v)
            cache = (k, v)
            # Slots past the written ones hold zeros: causality hides them.
            causal = True

        # Keys are [B, K, S, H] with a cache, [B, S, K, H] without.
        key_length = ops.shape(k)[2 if cache is not None else 1]
        mask = merge_masks(
            query_length,
            key_length,
            value_mask=value_mask,
            attention_mask=attention_mask,
            use_causal_mask=causal,
            causal_offset=start,
        )
        if cache is not None:
            output = self._attend_cached(q, k, v, mask, training)
            scores = None
        else:
            output, scores = self._attend(
                q, k, v, mask, training, return_attention_scores
            )
        output = apply_per_token(self.output_dense, output)  # [B, T, D]
        if cache is not None:
            return output, cache
        if return_attention_scores:
            return output, scores
        return output

    def _can_fuse_projections(self, query):
        # One decoding step (a static query length of 1) projects separately:
        # XLA does not hoist the kernels' concatenation out of the decoding
        # loop, and copying them every step costs more than the fused matmul
        # saves (BENCHMARKS.md, section 7, "Decoding"). Quantized kernels
        # need their own einsum; plain and LoRA ones fuse.
        if query.shape[1] == 1:
            return False
        return all(
            dense.quantization_mode is None
            for dense in (self.query_dense, self.key_dense, self.value_dense)
        )

    def _project_fused(self, x):
        """Self-attention Q, K, V from one matmul over concatenated kernels.

        One [B*T, D] x [D, (N + 2K) H] product (and one of each in the
        backward pass) instead of three; the variables keep their separate
        [D, N, H] / [D, K, H] layouts, so weights, checkpoints and parity with
        `keras.layers.MultiHeadAttention` are unchanged.
        """
        denses = (self.query_dense, self.key_dense, self.value_dense)
        kernel = ops.concatenate(
            [ops.cast(dense.kernel, self.compute_dtype) for dense in denses], axis=1
        )  # [D, N + 2K, H]
        shape = ops.shape(x)
        flat = ops.reshape(x, (-1, x.shape[-1]))  # [B*T, D]
        qkv = ops.einsum("ad,dnh->anh", flat, kernel)  # [B*T, N + 2K, H]
        if self.use_bias:
            bias = ops.concatenate(
                [ops.cast(dense.bias, self.compute_dtype) for dense in denses], axis=0
            )  # [N + 2K, H]
            qkv = qkv + bias
        n, k = self.num_heads, self._kv_heads
        # [B, T, N + 2K, H]. Not -1 for the heads: with a static T and a
        # dynamic B, TF's shape inference leaves that axis unknown and the
        # output projection then fails in graph mode.
        qkv = ops.reshape(qkv, (shape[0], shape[1], n + 2 * k, self.key_dim))
        return qkv[:, :, :n], qkv[:, :, n : n + k], qkv[:, :, n + k :]

    def _attend_cached(self, q, k, v, mask, training):
        """Attention over a cache: q [B, T, N, H], k and v [B, K, S, H].

        The cache keeps heads before positions, which is the layout of the
        two batched matmuls (over B and K), so a decoding step reads it where
        it lies. Kept as [B, S, K, H], XLA on CPU copied every layer's
        self- and cross-attention keys and values into this layout at every
        step: 5x the attention's own cost (BENCHMARKS.md, "Serving").
        Grouped queries stay grouped ([B, K, G * T, H], head n = k * G + g, as
        `ops.repeat` over K pairs them in `_attend`), so the cache is never
        repeated per query head either.
        """
        batch, length = ops.shape(q)[0], ops.shape(q)[1]
        groups = self.num_heads // self._kv_heads
        kv_heads, head_size = self._kv_heads, self.key_dim
        q = q * ops.cast(1.0 / math.sqrt(head_size), q.dtype)
        q = ops.reshape(q, (batch, length, kv_heads, groups, head_size))
        q = ops.transpose(q, (0, 2, 3, 1, 4))  # [B, K, G, T, H]
        q = ops.reshape(q, (batch, kv_heads, groups * length, head_size))
        logits = ops.einsum("bkqh,bksh->bkqs", q, k)  # [B, K, G * T, S]
        logits = ops.cast(logits, "float32")
        if mask is not None:
            key_length = ops.shape(k)[2]
            logits = ops.reshape(logits, (batch, kv_heads, groups, length, key_length))
            logits = ops.where(mask[:, None, None, :, :], logits, -1e9)
            logits = ops.reshape(logits, (batch, kv_heads, groups * length, key_length))
        probabilities = ops.softmax(logits, axis=-1)
        probabilities = ops.cast(probabilities, self.compute_dtype)
        probabilities = self.dropout_layer(probabilities, training=training)
        output = ops.einsum("bkqs,bksh->bkqh", probabilities, v)
        output = ops.reshape(output, (batch, kv_heads, groups, length, head_size))
        output = ops.transpose(output, (0, 3, 1, 2, 4))  # [B, T, K, G, H]
        return ops.reshape(output, (batch, length, self.num_heads, head_size))

    def _attend(self, q, k, v, mask, training, return_scores):
        if self._kv_heads != self.num_heads:
            groups = self.num_heads // self._kv_heads
            k = ops.repeat(k, groups, axis=2)  # [B, S, N, H]
            v = ops.repeat(v, groups, axis=2)  # [B, S, N, H]
        # Scaling q before the product keeps it in range: unscaled q.k can
        # pass float16's 65504 under mixed_float16 where the scaled value fits
        # (Keras' dot_product_attention also multiplies before it scales).
        q = q * ops.cast(1.0 / math.sqrt(self.key_dim), q.dtype)
        use_dropout = bool(training) and self.dropout > 0
        if not use_dropout and not return_scores:
            bias_mask = None if mask is None else mask[:, None, :, :]  # [B, 1, T, S]
            output = ops.dot_product_attention(q, k, v, mask=bias_mask, scale=1.0)
            return output, None
        # Explicit path: dropout on probabilities, or scores wanted by the caller.
        logits = ops.einsum("btnh,bsnh->bnts", q, k)  # [B, N, T, S]
        # The softmax runs in float32; probabilities return to compute dtype.
        logits = ops.cast(logits, "float32")
        if mask is not None:
            logits = ops.where(mask[:, None, :, :], logits, -1e9)
        probabilities = ops.softmax(logits, axis=-1)
        probabilities = ops.cast(probabilities, self.compute_dtype)
        dropped = self.dropout_layer(probabilities, training=training)
        output = ops.einsum("bnts,bsnh->btnh", dropped, v)  # [B, T, N, H]
        return output, probabilities

    def compute_output_shape(self, query_shape, value_shape=None, **kwargs):
        return (*query_shape[:-1], self.output_dim or query_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "num_kv_heads": self.num_kv_heads,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "rotary_max_wavelength": self.rotary_max_wavelength,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def heads_first(tensor):
    """[B, S, K, H] -> [B, K, S, H], the layout of attention caches."""
    return ops.transpose(tensor, (0, 2, 1, 3))
