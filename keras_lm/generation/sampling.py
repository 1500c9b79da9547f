"""Choosing the next token from logits: greedy, and seeded random sampling.

Notation: B rows, V vocabulary, C candidates kept for sampling (k of top-k, or V).

Random sampling uses the Gumbel-max trick (argmax of logits plus Gumbel noise
draws from softmax(logits)) with noise from a counter-based hash of
(seed, step, row, candidate). The noise is a pure function of its inputs, so it
needs no random state inside the compiled loop, a seed reproduces the same
tokens on every call, and TensorFlow and JAX draw the same numbers.
"""

from keras import ops

NEGATIVE_INFINITY = float("-inf")


def mask_ids(logits, token_ids):
    """[B, V] logits with every id of `token_ids` ([K] int32; -1 matches no id)
    made impossible: the pad id and the suppressed ids."""
    vocabulary = ops.shape(logits)[-1]
    ids = ops.arange(vocabulary, dtype="int32")
    is_masked = ops.any(ops.equal(ids[None, :], token_ids[:, None]), axis=0)  # [V]
    return ops.where(is_masked[None, :], NEGATIVE_INFINITY, logits)


def force_id(logits, token_id, where):
    """[B, V] logits where rows with `where` [B] can only take `token_id`
    (at log-probability 0, as transformers' forced tokens)."""
    vocabulary = ops.shape(logits)[-1]
    one_hot = ops.equal(ops.arange(vocabulary, dtype="int32"), token_id)  # [V]
    forced = ops.where(one_hot, 0.0, NEGATIVE_INFINITY)[None, :]
    return ops.where(where[:, None], ops.cast(forced, logits.dtype), logits)


def greedy(logits):
    """[B, V] logits -> [B] int32 most likely tokens."""
    return ops.cast(ops.argmax(logits, axis=-1), "int32")


def sample(logits, seed, step, temperature, top_k=None, top_p=None):
    """Draw one token per row from the tempered, truncated distribution.

    Args:
        logits: [B, V] float32.
        seed: uint32 scalar tensor.
        step: int32 scalar tensor, the position being generated; mixed into
            the noise so every step draws fresh numbers.
        temperature: float32 scalar tensor > 0; logits are divided by it.
        top_k: static int or None; keep only the k most likely tokens.
        top_p: float32 scalar tensor in (0, 1), or None; keep the smallest set
            of most likely tokens whose probability reaches `top_p` (nucleus
            sampling, Holtzman et al., 2020). Applied after `top_k`.

    Returns:
        [B] int32 token ids.
    """
    logits = logits / ops.cast(temperature, logits.dtype)
    candidates = None
    if top_k is not None or top_p is not None:
        # Sorted candidates (descending); top-p needs the order, top-k the cut.
        size = top_k if top_k is not None else ops.shape(logits)[-1]
        logits, candidates = ops.top_k(logits, size)  # [B, C]
    if top_p is not None:
        probabilities = ops.softmax(logits, axis=-1)
        mass_before = ops.cumsum(probabilities, axis=-1) - probabilities
        logits = ops.where(mass_before < top_p, logits, NEGATIVE_INFINITY)
    noise = gumbel_noise(ops.shape(logits), seed, step)
    choice = ops.argmax(logits + noise, axis=-1)  # [B]
    if candidates is not None:
        choice = ops.take_along_axis(candidates, choice[:, None], axis=-1)[:, 0]
    return ops.cast(choice, "int32")


def gumbel_noise(shape, seed, step):
    """[B, C] float32 Gumbel(0, 1) noise, a pure function of (seed, step)."""
    rows, columns = shape
    counter = ops.arange(rows * columns, dtype="int32")
    counter = ops.reshape(ops.cast(counter, "uint32"), (rows, columns))
    step_key = _hash(ops.cast(step, "uint32") + ops.cast(0x9E3779B9, "uint32"))
    key = _hash(ops.bitwise_xor(ops.cast(seed, "uint32"), step_key))
    bits = _hash(ops.bitwise_xor(counter, key) + key)
    # 24 high bits -> uniform in (0, 1), never exactly 0 or 1.
    top_bits = ops.right_shift(bits, ops.cast(8, "uint32"))
    uniform = (ops.cast(top_bits, "float32") + 0.5) / float(1 << 24)
    return -ops.log(-ops.log(uniform))


def _hash(x):
    """A 32-bit integer mixing function (Wellons' "lowbias32")."""
    x = ops.bitwise_xor(x, ops.right_shift(x, ops.cast(16, "uint32")))
    x = ops.multiply(x, ops.cast(0x7FEB352D, "uint32"))
    x = ops.bitwise_xor(x, ops.right_shift(x, ops.cast(15, "uint32")))
    x = ops.multiply(x, ops.cast(0x846CA68B, "uint32"))
    return ops.bitwise_xor(x, ops.right_shift(x, ops.cast(16, "uint32")))
