"""The chunked `top_k` returns exactly what `keras.ops.top_k` returns."""

import numpy as np
import pytest
from keras import ops

from keras_lm.generation import top_k

pytestmark = pytest.mark.multibackend


def _expected(values, k):
    top, indices = ops.top_k(values, k)
    return np.asarray(top), np.asarray(indices).astype("int32")


def _chunked(values, k, chunk):
    top, indices = top_k.top_k(ops.convert_to_tensor(values), k, chunk=chunk)
    return np.asarray(top), np.asarray(indices)


@pytest.mark.parametrize("size", [1000, 1024, 777])
def test_equals_ops_top_k_with_ties_and_negative_infinity(size):
    """Few distinct values, so ties cross chunk boundaries and decide which
    chunks are chosen; -inf values and, for sizes that are not a multiple of
    the chunk, padded values must rank after every real one."""
    rng = np.random.default_rng(size)
    values = rng.integers(0, 6, size=(3, 5, size)).astype("float32")
    values[0, 0, :] = -np.inf  # a row with nothing but -inf (a dead beam)
    values[1, 2, rng.integers(0, size, 30)] = -np.inf
    values[2, 4, :] = 7.0  # every value tied
    for k in (1, 8):
        top, indices = _chunked(values, k, chunk=16)
        want_top, want_indices = _expected(values, k)
        np.testing.assert_array_equal(top, want_top)
        np.testing.assert_array_equal(indices, want_indices)


def test_a_tie_goes_to_the_lower_index_whatever_the_chunk_maxima():
    """Chunk 0 holds a 5 at index 0; chunk 1 holds the 9 and another 5. The
    second best is the 5 at index 0, though its chunk's maximum is lower."""
    values = np.zeros((1, 256), "float32")
    values[0, 0] = 5.0
    values[0, 16] = 9.0
    values[0, 17] = 5.0
    top, indices = _chunked(values, 2, chunk=16)
    np.testing.assert_array_equal(top, [[9.0, 5.0]])
    np.testing.assert_array_equal(indices, [[16, 0]])


def test_equals_ops_top_k_on_distinct_floats_and_takes_the_fast_path(monkeypatch):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(4, 2048)).astype("float32")
    seen = []
    original = ops.max
    monkeypatch.setattr(
        top_k.ops, "max", lambda *a, **kw: seen.append(1) or original(*a, **kw)
    )
    top, indices = _chunked(values, 8, chunk=32)
    assert seen, "a 2048-value axis should go through the chunk maxima"
    want_top, want_indices = _expected(values, 8)
    np.testing.assert_array_equal(top, want_top)
    np.testing.assert_array_equal(indices, want_indices)


def test_short_axes_use_ops_top_k():
    values = np.arange(20, dtype="float32")[None, :]
    top, indices = _chunked(values, 3, chunk=32)
    np.testing.assert_array_equal(top, [[19, 18, 17]])
    np.testing.assert_array_equal(indices, [[19, 18, 17]])
