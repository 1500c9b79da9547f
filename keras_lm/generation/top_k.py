"""`top_k` over a long last axis, exactly as `keras.ops.top_k` gives it.

A beam search step takes the 2W best of W * V candidates: k is tiny and V is
a vocabulary. XLA on CPU runs `top_k` as one partial sort per row, about
1.2 ns per value (the translation example's `small` model, V = 8000: 11% of
a beam search step, BENCHMARKS.md "Serving"). Here the values are cut into
chunks of `CHUNK`; a vectorized max over each chunk, a `top_k` over the
N / CHUNK maxima, and a `top_k` over the k chosen chunks' k * CHUNK values
give the same result.

Why it is exact, ties included (`ops.top_k` puts the lower index first among
equal values): order the values by (value descending, index ascending). If a
chunk c holding one of the k first values e were not chosen, each of the k
chosen chunks would hold a value before e in that order: its maximum, which
is larger than e, or equal to it in a chunk of lower index (the `top_k` over
maxima breaks ties by index too), so e could not be among the first k. The
chosen chunks are gathered in index order, so the last `top_k` breaks ties in
the original index order.
"""

from keras import ops

CHUNK = 32


def top_k(values, k, chunk=None):
    """`(values [..., k], indices [..., k] int32)` of the k largest entries of
    `values` [..., N] along its last axis, best first, equal to
    `ops.top_k(values, k)` (lower index first among equal values).

    N must be static. Short axes (under 4 chunks per k) go to `ops.top_k`.
    """
    chunk = CHUNK if chunk is None else chunk
    size = values.shape[-1]
    if size is None:
        raise ValueError("top_k needs a static last axis.")
    if size < 4 * chunk * k:
        top, indices = ops.top_k(values, k)
        return top, ops.cast(indices, "int32")
    leading = ops.shape(values)[:-1]
    chunks = -(-size // chunk)
    if chunks * chunk != size:  # padding ranks last: after every real value
        pad = [[0, 0]] * (len(values.shape) - 1) + [[0, chunks * chunk - size]]
        values = ops.pad(values, pad, constant_values=float("-inf"))
    blocks = ops.reshape(values, (*leading, chunks, chunk))
    _, chosen = ops.top_k(ops.max(blocks, axis=-1), k)  # [..., k]
    chosen = ops.sort(ops.cast(chosen, "int32"), axis=-1)  # index order
    gathered = ops.take_along_axis(blocks, chosen[..., None], axis=-2)
    gathered = ops.reshape(gathered, (*leading, k * chunk))
    top, position = ops.top_k(gathered, k)
    position = ops.cast(position, "int32")
    block = ops.take_along_axis(chosen, position // chunk, axis=-1)
    return top, block * chunk + position % chunk
