"""One Transformer layer: encoder, causal decoder, or decoder with cross-attention.

Notation: B batch, T length, S encoder length, D width, F intermediate width.
"""

import keras
from keras import ops

from keras_lm.layers.multi_head_attention import MultiHeadAttention
from keras_lm.layers.validation import check_choice, check_positive_int, check_rate

ACTIVATIONS = ("relu", "gelu", "swiglu", "gelu_approximate", "silu")
NORMALIZATIONS = ("layer_norm", "rms_norm")


@keras.saving.register_keras_serializable(package="keras_lm")
class TransformerBlock(keras.layers.Layer):
    """Self-attention, optional cross-attention, and a feed-forward network.

    Post-norm (`normalize_first=False`) is the layout of Vaswani et al. (2017):
    `x = norm(x + dropout(sublayer(x)))`. Pre-norm (`normalize_first=True`) is
    `x = x + dropout(sublayer(norm(x)))`, which trains without careful warmup;
    a stack of pre-norm blocks needs a final normalization, which the models add.

    Args:
        num_heads: attention heads; must divide the input width D.
        intermediate_dim: F, the feed-forward width.
        num_kv_heads: key/value heads for grouped-query attention.
        dropout: dropout after each sublayer and on attention probabilities.
        activation: "relu", "gelu", "swiglu" (Shazeer, 2020),
            "gelu_approximate" (GPT-2's tanh form) or "silu" (swish, Marian).
            "gelu" also computes the tanh form; it keeps its name so that
            existing configs load unchanged.
        normalize_first: pre-norm when True, post-norm when False.
        use_causal_mask: a decoder block: no attending to later positions.
        use_cross_attention: attend to `encoder_outputs` after self-attention.
        normalization: "layer_norm" or "rms_norm".
        layer_norm_epsilon: epsilon of the normalization layers.
        rotary_max_wavelength: apply RoPE in self-attention with this base.
        use_bias: biases in projections and the feed-forward network.
        kernel_initializer: initializer of all kernels.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: [B, T, D].
        padding_mask: [B, T] bool, True at real tokens of `inputs`.
        encoder_outputs: [B, S, D] for cross-attention blocks.
        encoder_padding_mask: [B, S] bool, True at real encoder tokens. Only
            this mask reaches cross-attention (never the decoder's).
        self_attention_cache: `(key, value)` of [B, K, T_max, H] for decoding.
        cross_attention_cache: `(key, value)` of [B, K, S, H], computed once
            with `cross_attention_cache_for(encoder_outputs)`.
        cache_update_index: position of the first token of `inputs`.
        return_attention_scores: also return the cross-attention (or, without
            it, self-attention) probabilities [B, N, T, S].
        training: whether dropout is active.

    Returns:
        [B, T, D]; with `self_attention_cache`, `(outputs, new_cache)`; with
        `return_attention_scores`, `(outputs, scores)`.

    Example:
    >>> block = keras_lm.layers.TransformerBlock(num_heads=2, intermediate_dim=16,
    ...                                          use_causal_mask=True)
    >>> block(np.ones((2, 5, 8), "float32")).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        num_kv_heads=None,
        dropout=0.0,
        activation="relu",
        normalize_first=False,
        use_causal_mask=False,
        use_cross_attention=False,
        normalization="layer_norm",
        layer_norm_epsilon=1e-5,
        rotary_max_wavelength=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("num_heads", num_heads)
        check_positive_int("intermediate_dim", intermediate_dim)
        check_rate("dropout", dropout)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("normalization", normalization, NORMALIZATIONS)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.num_kv_heads = num_kv_heads
        self.dropout = dropout
        self.activation = activation
        self.normalize_first = normalize_first
        self.use_causal_mask = use_causal_mask
        self.use_cross_attention = use_cross_attention
        self.normalization = normalization
        self.layer_norm_epsilon = layer_norm_epsilon
        self.rotary_max_wavelength = rotary_max_wavelength
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _norm(self, name):
        if self.normalization == "rms_norm":
            return keras.layers.RMSNormalization(
                epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
            )
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def _dense(self, name, equation, output_dim, bias_axes):
        return keras.layers.EinsumDense(
            equation,
            output_shape=(output_dim,),
            bias_axes=bias_axes if self.use_bias else None,
            kernel_initializer=self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            dtype=self.dtype_policy,
            name=name,
        )

    def _attention(self, name, rotary):
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self._head_dim,
            num_kv_heads=self.num_kv_heads,
            dropout=self.dropout,
            use_bias=self.use_bias,
            rotary_max_wavelength=self.rotary_max_wavelength if rotary else None,
            kernel_initializer=self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, inputs_shape, encoder_outputs_shape=None):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                "The input width (hidden_dim) must be divisible by num_heads. "
                f"Received: hidden_dim={hidden_dim}, num_heads={self.num_heads}"
            )
        self._head_dim = hidden_dim // self.num_heads
        self.self_attention = self._attention("self_attention", rotary=True)
        self.self_attention.build(inputs_shape)
        self.self_attention_norm = self._norm("self_attention_norm")
        self.self_attention_norm.build(inputs_shape)
        if self.use_cross_attention:
            encoder_outputs_shape = encoder_outputs_shape or inputs_shape
            self.cross_attention = self._attention("cross_attention", rotary=False)
            self.cross_attention.build(inputs_shape, encoder_outputs_shape)
            self.cross_attention_norm = self._norm("cross_attention_norm")
            self.cross_attention_norm.build(inputs_shape)
        # The feed-forward network runs on tokens flattened to [B*T, D].
        flat_shape = (None, hidden_dim)
        if self.activation == "swiglu":
            self.ffn_gate = self._dense(
                "ffn_gate", "ad,df->af", self.intermediate_dim, "f"
            )
            self.ffn_gate.build(flat_shape)
        self.ffn_intermediate = self._dense(
            "ffn_intermediate", "ad,df->af", self.intermediate_dim, "f"
        )
        self.ffn_intermediate.build(flat_shape)
        self.ffn_output = self._dense("ffn_output", "af,fd->ad", hidden_dim, "d")
        self.ffn_output.build((None, self.intermediate_dim))
        self.ffn_norm = self._norm("ffn_norm")
        self.ffn_norm.build(inputs_shape)
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="residual_dropout"
        )
        self.built = True

    def cross_attention_cache_for(self, encoder_outputs):
        """Keys and values of the encoder outputs, computed once per source."""
        return self.cross_attention.project_key_value(encoder_outputs)

    def _residual(self, inputs, norm, sublayer, training):
        x = norm(inputs) if self.normalize_first else inputs
        result = sublayer(x)
        extra = None
        if isinstance(result, tuple):
            result, extra = result
        outputs = inputs + self.dropout_layer(result, training=training)
        if not self.normalize_first:
            outputs = norm(outputs)
        return outputs, extra

    def _feed_forward(self, x):
        shape = ops.shape(x)
        x = ops.reshape(x, (-1, x.shape[-1]))  # [B*T, D]
        hidden = self.ffn_intermediate(x)  # [B*T, F]
        if self.activation == "swiglu":
            hidden = ops.silu(self.ffn_gate(x)) * hidden
        elif self.activation in ("gelu", "gelu_approximate"):
            hidden = ops.gelu(hidden, approximate=True)
        elif self.activation == "silu":
            hidden = ops.silu(hidden)
        else:
            hidden = ops.relu(hidden)
        hidden = self.dropout_layer(hidden)
        return ops.reshape(self.ffn_output(hidden), shape)  # [B, T, D]

    def call(
        self,
        inputs,
        padding_mask=None,
        encoder_outputs=None,
        encoder_padding_mask=None,
        self_attention_cache=None,
        cross_attention_cache=None,
        cache_update_index=None,
        return_attention_scores=False,
        training=None,
    ):
        if (
            self.use_cross_attention
            and encoder_outputs is None
            and (cross_attention_cache is None)
        ):
            raise ValueError(
                "This block has use_cross_attention=True: pass encoder_outputs "
                "or cross_attention_cache."
            )
        want_self_scores = return_attention_scores and not self.use_cross_attention

        def self_attend(x):
            return self.self_attention(
                x,
                value_mask=padding_mask,
                use_causal_mask=self.use_causal_mask,
                cache=self_attention_cache,
                cache_update_index=cache_update_index,
                return_attention_scores=want_self_scores,
                training=training,
            )

        x, extra = self._residual(
            inputs, self.self_attention_norm, self_attend, training
        )
        new_cache = extra if self_attention_cache is not None else None
        scores = extra if want_self_scores else None

        if self.use_cross_attention:

            def cross_attend(x):
                result = self.cross_attention(
                    x,
                    value=encoder_outputs,
                    value_mask=encoder_padding_mask,
                    cache=cross_attention_cache,
                    return_attention_scores=return_attention_scores,
                    training=training,
                )
                # A cross-attention cache is read, never updated.
                if cross_attention_cache is not None:
                    return result[0]
                return result

            x, scores = self._residual(
                x, self.cross_attention_norm, cross_attend, training
            )

        x, _ = self._residual(x, self.ffn_norm, self._feed_forward, training)
        if self_attention_cache is not None:
            return x, new_cache
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, inputs_shape, *args, **kwargs):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "num_kv_heads": self.num_kv_heads,
                "dropout": self.dropout,
                "activation": self.activation,
                "normalize_first": self.normalize_first,
                "use_causal_mask": self.use_causal_mask,
                "use_cross_attention": self.use_cross_attention,
                "normalization": self.normalization,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "rotary_max_wavelength": self.rotary_max_wavelength,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
