"""Apply a per-token `EinsumDense` to [B, T, ...] through [B*T, ...].

Keras' TensorFlow einsum turns "btd,df->btf" into a matmul broadcast over the
batch, whose kernel gradient is B separate [T, D] x [T, F] products summed
afterwards: B times the memory traffic of one [B*T, D] x [B*T, F] product.
Folding B and T together first gives XLA plain 2-D matmuls on every backend
(measured in BENCHMARKS.md). Kernels keep their shapes, so weights, int8
quantization and LoRA are unchanged.
"""

from keras import ops


def _dims(tensor, start):
    """Trailing dimensions from `start`, static where known, else dynamic."""
    dynamic = ops.shape(tensor)
    return [
        dim if dim is not None else dynamic[axis]
        for axis, dim in enumerate(tensor.shape[start:], start=start)
    ]


def apply_per_token(dense, x):
    """[B, T, *in] -> dense([B*T, *in]) -> [B, T, *out]."""
    shape = ops.shape(x)
    # Inside a graph traced with unknown lengths, some trailing dimensions
    # can also lose their static value; read those at run time.
    flat = ops.reshape(x, (-1, *_dims(x, 2)))  # [B*T, *in]
    y = dense(flat)  # [B*T, *out]
    return ops.reshape(y, (shape[0], shape[1], *_dims(y, 1)))  # [B, T, *out]
