"""Pieces shared by the two models: input checks, embeddings, caches."""

import math

import keras
import numpy as np
from keras import ops

from keras_lm.layers.position_embedding import PositionEmbedding
from keras_lm.layers.position_encoding import PositionEncoding
from keras_lm.layers.token_embedding import TokenEmbedding
from keras_lm.layers.validation import (
    check_choice,
    check_ids_in_vocabulary,
    check_positive_int,
    check_rate,
    check_sequence_length,
)

POSITION_ENCODINGS = ("sinusoidal", "learned", "rotary")


def check_model_arguments(
    num_heads,
    hidden_dim,
    intermediate_dim,
    vocabulary_size,
    max_sequence_length,
    dropout,
    position_encoding,
    num_kv_heads=None,
):
    check_positive_int("vocabulary_size", vocabulary_size)
    check_positive_int("num_heads", num_heads)
    check_positive_int("hidden_dim", hidden_dim)
    check_positive_int("intermediate_dim", intermediate_dim)
    check_positive_int("max_sequence_length", max_sequence_length)
    check_rate("dropout", dropout)
    check_choice("position_encoding", position_encoding, POSITION_ENCODINGS)
    if hidden_dim % num_heads:
        raise ValueError(
            "hidden_dim must be divisible by num_heads. Received: "
            f"hidden_dim={hidden_dim}, num_heads={num_heads}"
        )
    if num_kv_heads is not None:
        check_positive_int("num_kv_heads", num_kv_heads)
        if num_heads % num_kv_heads:
            raise ValueError(
                "num_heads must be a multiple of num_kv_heads. Received: "
                f"num_heads={num_heads}, num_kv_heads={num_kv_heads}"
            )
    if position_encoding == "rotary" and (hidden_dim // num_heads) % 2:
        raise ValueError(
            "Rotary position encoding needs an even head size (hidden_dim / "
            f"num_heads). Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
        )


def check_token_inputs(inputs, names, max_sequence_length, vocabulary_size=None):
    """Refuse inputs the model would otherwise cast, broadcast or clamp silently.

    Ids outside `[0, vocabulary_size)` would gather a clamped (XLA, GPU) or
    no embedding row. Concrete ids (numpy, eager tensors) are checked here;
    in a TensorFlow graph an assertion is added that fails when the step
    runs (XLA compiles assertions away); symbolic Keras tensors and JAX
    tracers carry no values and are not range-checked.

    Returns:
        `inputs`; in a TensorFlow graph, a copy whose ids pass through the
        range assertion, so that it runs before the embedding gathers them.
    """
    if not isinstance(inputs, dict):
        raise ValueError(
            f"Expected a dict with keys {list(names)}. "
            f"Received: {type(inputs).__name__}"
        )
    missing = [name for name in names if name not in inputs]
    if missing:
        raise ValueError(
            f"Missing inputs {missing}. Expected keys {list(names)}, received "
            f"{sorted(inputs)}."
        )
    checked = {}
    for name in names:
        value = inputs[name]
        if not hasattr(value, "dtype"):
            value = np.asarray(value)
        dtype = keras.backend.standardize_dtype(value.dtype)
        integer = dtype.startswith("int") or dtype.startswith("uint")
        if not (integer or _is_replica_average_spec(value)):
            raise ValueError(
                f"{name} must hold integer token ids. Received dtype={dtype}. "
                "Tokenize text first (keras_lm.tokenizers) and pass int32 ids."
            )
        shape = tuple(value.shape)
        if len(shape) != 2:
            raise ValueError(
                f"{name} must have shape [batch, length]. Received shape={shape}."
            )
        check_sequence_length(name, shape[1], max_sequence_length)
        if vocabulary_size is not None and integer:
            guarded = _check_ids_in_vocabulary(name, value, vocabulary_size)
            if guarded is not None:
                checked[name] = guarded
    return {**inputs, **checked} if checked else inputs


def _check_ids_in_vocabulary(name, value, vocabulary_size):
    """Raise for concrete ids outside the vocabulary; for a TensorFlow graph
    tensor, return it behind an assertion of the same."""
    tf = _tensorflow()
    if tf is not None and tf.is_symbolic_tensor(value):
        ids = tf.cast(value, "int64")
        low, high = tf.reduce_min(ids), tf.reduce_max(ids)
        assertion = tf.debugging.Assert(
            tf.logical_and(low >= 0, high < vocabulary_size),
            [
                f"{name} holds ids outside the vocabulary [0, {vocabulary_size})"
                ": min id",
                low,
                "max id",
                high,
            ],
            name=f"{name}_in_vocabulary",
        )
        with tf.control_dependencies([assertion]):
            return tf.identity(value)
    ids = _concrete_values(value)
    if ids is not None:
        check_ids_in_vocabulary(name, ids, vocabulary_size)
    return None


def _concrete_values(value):
    """numpy values of `value`, or None for a symbolic tensor or tracer."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, keras.KerasTensor):
        return None
    if keras.backend.backend() == "jax":
        import jax

        if isinstance(value, jax.core.Tracer):
            return None
    return keras.ops.convert_to_numpy(value)


def _tensorflow():
    """The `tensorflow` module when Keras runs on it, else None: the models
    also run on JAX, where TensorFlow need not be installed."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


def _is_replica_average_spec(value):
    """Whether `value` is the spec Keras builds a model's compiled state from
    under a multi-replica `tf.distribute` strategy.

    Before its first step, Keras 3.15's fit (and evaluate) averages the first
    batch over replicas, ids included, which makes them float64, and calls
    the model on placeholders of that spec in the strategy's cross-replica
    context to build the compiled loss and metrics. No value is computed
    there, so none can be truncated; the steps themselves run in replica
    context and are checked.
    """
    tf = _tensorflow()
    return (
        tf is not None
        and tf.is_symbolic_tensor(value)
        and tf.distribute.in_cross_replica_context()
        and tf.distribute.get_strategy().num_replicas_in_sync > 1
    )


def make_embedding_layers(
    vocabulary_size,
    hidden_dim,
    tie_embeddings,
    position_encoding,
    max_sequence_length,
    dropout,
    dtype,
):
    """(token embedding, position layer or None, embedding dropout)."""
    token_embedding = TokenEmbedding(
        vocabulary_size,
        hidden_dim,
        tie_weights=tie_embeddings,
        dtype=dtype,
        name="token_embedding",
    )
    position_layer = make_position_layer(
        position_encoding, max_sequence_length, dtype, "position_encoding"
    )
    dropout_layer = keras.layers.Dropout(dropout, dtype=dtype, name="embedding_dropout")
    return token_embedding, position_layer, dropout_layer


def make_final_norm(normalize_first, normalization, epsilon, dtype, name):
    """The norm after a pre-norm stack; post-norm stacks end normalized."""
    if not normalize_first:
        return None
    if normalization == "rms_norm":
        return keras.layers.RMSNormalization(epsilon=epsilon, dtype=dtype, name=name)
    return keras.layers.LayerNormalization(epsilon=epsilon, dtype=dtype, name=name)


def make_position_layer(position_encoding, max_sequence_length, dtype, name):
    if position_encoding == "sinusoidal":
        return PositionEncoding(dtype=dtype, name=name)
    if position_encoding == "learned":
        return PositionEmbedding(max_sequence_length, dtype=dtype, name=name)
    return None  # rotary: applied inside self-attention


def embed(
    token_embedding,
    position_layer,
    dropout_layer,
    token_ids,
    start_index=0,
    training=None,
    scale=True,
):
    """Token embeddings (times sqrt(D) when `scale`), plus positions, dropout.

    Vaswani et al. (2017) scale by sqrt(D); GPT-2 does not.
    """
    x = token_embedding(token_ids)  # [B, T, D]
    if scale:
        x = x * ops.cast(math.sqrt(token_embedding.hidden_dim), x.dtype)
    if position_layer is not None:
        x = x + position_layer(x, start_index=start_index)
    return dropout_layer(x, training=training)


def empty_cache(blocks, batch_size, max_length, dtype):
    """One `(key, value)` pair of zeros [B, K, max_length, H] per block."""
    cache = []
    for block in blocks:
        attention = block.self_attention
        shape = (batch_size, attention._kv_heads, max_length, attention.key_dim)
        cache.append((ops.zeros(shape, dtype), ops.zeros(shape, dtype)))
    return tuple(cache)


def resize_cache(cache, max_length):
    """`empty_cache`'s structure with room for `max_length` positions: the
    first `max_length` slots kept, or zeros added after the last one.

    Decoding grows a cache in stages (`generation.row_stages`), so early
    steps attend to, and beam search reorders, only the slots a stage holds.
    """

    def resize(tensor):
        length = tensor.shape[2]
        if isinstance(max_length, int) and isinstance(length, int):
            if max_length <= length:
                return tensor[:, :, :max_length]
            added = max_length - length
        else:  # a length XLA knows only when it compiles (exports)
            added = ops.maximum(max_length - ops.shape(tensor)[2], 0)
        padded = ops.pad(tensor, [[0, 0], [0, 0], [0, added], [0, 0]])
        return padded[:, :, :max_length]

    return keras.tree.map_structure(resize, cache)


def output_kernel(token_embedding):
    """The tied output projection [D, V], transposed once, or None.

    A decoding loop computes this before the loop and passes it to every
    step: XLA on CPU does not hoist the transpose of the embedding table out
    of a while loop, and multiplying by the transposed table each step costs
    about 1.6x a plain matmul (BENCHMARKS.md, section 7, "Decoding"). None
    where the layer's own reverse call must run (untied, quantized or
    soft-capped tables).
    """
    if (
        not token_embedding.tie_weights
        or token_embedding.quantization_mode is not None
        or token_embedding.logit_soft_cap is not None
    ):
        return None
    kernel = ops.transpose(ops.convert_to_tensor(token_embedding.embeddings))
    return ops.cast(kernel, token_embedding.reverse_dtype)


def to_logits(token_embedding, x, kernel=None):
    """[B, T, D] -> float32 logits [B, T, V], through `kernel` when given
    (from `output_kernel`), else the embedding's reverse call."""
    if kernel is None:
        logits = token_embedding(x, reverse=True)  # [B, T, V]
    else:
        logits = ops.matmul(ops.cast(x, kernel.dtype), kernel)
    # Keep logits in float32 under mixed precision so the softmax is stable.
    return ops.cast(logits, "float32")
