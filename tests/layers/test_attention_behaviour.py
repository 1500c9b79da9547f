import keras
import numpy as np
import pytest

from keras_lm import layers

pytestmark = pytest.mark.multibackend

B, T, S, D, N, H = 2, 5, 6, 8, 2, 4


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(B, T, D)).astype("float32"),
        rng.normal(size=(B, S, D)).astype("float32"),
    )


def _copy_from_keras(ours, reference):
    """Copy keras.layers.MultiHeadAttention weights (same kernel shapes)."""
    for mine, theirs in [
        (ours.query_dense, reference._query_dense),
        (ours.key_dense, reference._key_dense),
        (ours.value_dense, reference._value_dense),
        (ours.output_dense, reference._output_dense),
    ]:
        mine.set_weights(theirs.get_weights())


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_parity_with_keras_multi_head_attention(masked, causal):
    query, value = _inputs()
    if causal:
        value = query  # causal masks need a square attention matrix
    reference = keras.layers.MultiHeadAttention(num_heads=N, key_dim=H)
    ours = layers.MultiHeadAttention(num_heads=N, key_dim=H)
    value_mask = np.ones((B, value.shape[1]), bool)
    value_mask[0, -2:] = False
    kwargs_ref, kwargs_ours = {}, {}
    if masked:
        kwargs_ref["attention_mask"] = np.broadcast_to(
            value_mask[:, None, :], (B, T, value.shape[1])
        )
        kwargs_ours["value_mask"] = value_mask
    expected = reference(query, value, use_causal_mask=causal, **kwargs_ref)
    ours(query, value)
    _copy_from_keras(ours, reference)
    actual = ours(query, value, use_causal_mask=causal, **kwargs_ours)
    np.testing.assert_allclose(_np(actual), _np(expected), atol=1e-5)
    # The explicit (score-returning) path gives the same result.
    actual_explicit, scores = ours(
        query,
        value,
        use_causal_mask=causal,
        return_attention_scores=True,
        **kwargs_ours,
    )
    np.testing.assert_allclose(_np(actual_explicit), _np(expected), atol=1e-5)
    np.testing.assert_allclose(_np(scores).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_causal_self_attention_ignores_future_even_with_dropout(dropout):
    # keras#23038: causality was dropped when dropout > 0; check both paths.
    query, _ = _inputs()
    attention = layers.MultiHeadAttention(num_heads=N, key_dim=H, dropout=dropout)
    changed = query.copy()
    changed[:, 3:] += 10.0
    attention.build(query.shape)
    # Replay the same dropout mask for both calls.
    generator = getattr(attention.dropout_layer, "seed_generator", None)
    initial = None if generator is None else _np(generator.state)
    first = _np(attention(query, use_causal_mask=True, training=True))
    if generator is not None:
        generator.state.assign(initial)
    second = _np(attention(changed, use_causal_mask=True, training=True))
    np.testing.assert_allclose(first[:, :3], second[:, :3], atol=1e-5)
    assert not np.allclose(first[:, 3:], second[:, 3:])


def _peaked_attention(dtype, dropout):
    """One head of size 16 with identity projections: on one-hot inputs of
    size 20, q.k is 400**2 = 160000 on the diagonal (over float16's 65504)
    and 0 elsewhere; scaled by 16**-0.5 it is 40000, which fits."""
    width = 16
    attention = layers.MultiHeadAttention(
        num_heads=1, key_dim=width, dropout=dropout, dtype=dtype
    )
    attention.build((B, T, width))
    eye = np.eye(width, dtype="float32")
    attention.query_dense.kernel.assign(20.0 * eye[:, None, :])
    attention.key_dense.kernel.assign(20.0 * eye[:, None, :])
    attention.value_dense.kernel.assign(eye[:, None, :])
    attention.output_dense.kernel.assign(eye[:, None, :].transpose(1, 2, 0))
    x = np.zeros((B, T, width), "float32")
    x[:, np.arange(T), np.arange(T)] = 20.0
    return attention, x


def test_attention_scales_before_the_product_under_float16():
    # Both paths multiplied unscaled q.k in the compute dtype: under
    # mixed_float16 it overflowed to inf and the softmax gave NaN.
    reference, x = _peaked_attention("float32", dropout=0.0)
    expected = _np(reference(x))
    attention, _ = _peaked_attention("mixed_float16", dropout=0.5)
    np.testing.assert_allclose(_np(attention(x)), expected, atol=1e-3)
    output, scores = attention(x, return_attention_scores=True)
    np.testing.assert_allclose(_np(scores)[:, 0], np.broadcast_to(np.eye(T), (B, T, T)))
    np.testing.assert_allclose(_np(output), expected, atol=1e-3)
    dropped = _np(attention(x, training=True))
    assert np.all(np.isfinite(dropped))
    kept = dropped[:, np.arange(T), np.arange(T)]
    # Each output is its own value, kept (x 2) or dropped.
    assert set(np.unique(kept)) <= {0.0, 40.0}


def test_value_mask_hides_padded_keys():
    query, value = _inputs()
    attention = layers.MultiHeadAttention(num_heads=N, key_dim=H)
    mask = np.ones((B, S), bool)
    mask[:, -2:] = False
    changed = value.copy()
    changed[:, -2:] = 100.0
    np.testing.assert_allclose(
        _np(attention(query, value, value_mask=mask)),
        _np(attention(query, changed, value_mask=mask)),
        atol=1e-5,
    )
    assert not np.allclose(_np(attention(query, value)), _np(attention(query, changed)))


@pytest.mark.parametrize("num_kv_heads", [None, 1])
@pytest.mark.parametrize("rotary", [None, 10000])
def test_self_attention_cache_matches_full_pass(num_kv_heads, rotary):
    query, _ = _inputs()
    attention = layers.MultiHeadAttention(
        num_heads=N, key_dim=H, num_kv_heads=num_kv_heads, rotary_max_wavelength=rotary
    )
    full = _np(attention(query, use_causal_mask=True))
    kv = num_kv_heads or N
    cache = (
        np.zeros((B, kv, T + 2, H), "float32"),
        np.zeros((B, kv, T + 2, H), "float32"),
    )
    # Prefill two positions, then one at a time.
    out, cache = attention(
        query[:, :2], use_causal_mask=True, cache=cache, cache_update_index=0
    )
    outputs = [_np(out)]
    for t in range(2, T):
        out, cache = attention(
            query[:, t : t + 1], use_causal_mask=True, cache=cache, cache_update_index=t
        )
        outputs.append(_np(out))
    np.testing.assert_allclose(np.concatenate(outputs, axis=1), full, atol=1e-5)


def test_cross_attention_cache_matches_full_pass():
    query, value = _inputs()
    attention = layers.MultiHeadAttention(num_heads=N, key_dim=H)
    mask = np.ones((B, S), bool)
    mask[1, -3:] = False
    full = _np(attention(query, value, value_mask=mask))
    cache = attention.project_key_value(value)
    stepwise = []
    for t in range(T):
        out, returned = attention(query[:, t : t + 1], value_mask=mask, cache=cache)
        stepwise.append(_np(out))
    np.testing.assert_allclose(np.concatenate(stepwise, axis=1), full, atol=1e-5)
    np.testing.assert_array_equal(_np(returned[0]), _np(cache[0]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_heads=0, key_dim=4), "num_heads=0"),
        (dict(num_heads=4, key_dim=4, num_kv_heads=3), "num_kv_heads=3"),
        (dict(num_heads=2, key_dim=-1), "key_dim=-1"),
        (dict(num_heads=2, key_dim=4, dropout=1.5), "dropout=1.5"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.MultiHeadAttention(**kwargs)


def test_sinusoidal_values_and_start_index():
    x = np.zeros((1, 6, 8), "float32")
    encoding = _np(layers.PositionEncoding()(x))[0]
    position, i = 3, 2  # feature 2i is sin, 2i+1 is cos
    angle = position / 10000 ** (2 * i / 8)
    np.testing.assert_allclose(encoding[position, 2 * i], np.sin(angle), atol=1e-6)
    np.testing.assert_allclose(encoding[position, 2 * i + 1], np.cos(angle), atol=1e-6)
    shifted = _np(layers.PositionEncoding()(x[:, :2], start_index=4))[0]
    np.testing.assert_allclose(shifted, encoding[4:6], atol=1e-6)


def test_rotary_scores_depend_only_on_relative_position():
    rope = layers.RotaryEmbedding()
    rng = np.random.default_rng(0)
    q = rng.normal(size=(1, 1, 1, 8)).astype("float32")
    k = rng.normal(size=(1, 1, 1, 8)).astype("float32")

    def score(m, n):
        return float((_np(rope(q, start_index=m)) * _np(rope(k, start_index=n))).sum())

    assert score(5, 2) == pytest.approx(score(13, 10), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)


def test_position_embedding_refuses_long_inputs():
    with pytest.raises(ValueError, match="max_sequence_length=4"):
        layers.PositionEmbedding(sequence_length=4)(np.zeros((1, 6, 8), "float32"))


def test_block_refuses_width_not_divisible_by_heads():
    with pytest.raises(ValueError, match="hidden_dim=10, num_heads=4"):
        layers.TransformerBlock(num_heads=4, intermediate_dim=8)(
            np.zeros((1, 3, 10), "float32")
        )


def test_block_bad_activation():
    with pytest.raises(ValueError, match="activation"):
        layers.TransformerBlock(num_heads=2, intermediate_dim=8, activation="tanh")
