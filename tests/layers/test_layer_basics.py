import keras
import numpy as np
import pytest

from keras_lm import layers
from tests.layer_test_case import run_layer_test

pytestmark = pytest.mark.multibackend

B, T, D = 2, 5, 8
X = np.random.default_rng(0).normal(size=(B, T, D)).astype("float32")
IDS = np.array([[4, 5, 6, 0, 0], [7, 8, 9, 10, 11]], "int32")


@pytest.mark.parametrize(
    "init_kwargs, weights",
    [
        (dict(num_heads=2, key_dim=4), 8),
        (dict(num_heads=4, key_dim=2, num_kv_heads=2, dropout=0.1), 8),
        (dict(num_heads=2, key_dim=4, use_bias=False, rotary_max_wavelength=100), 4),
    ],
)
def test_multi_head_attention(init_kwargs, weights, tmp_path):
    run_layer_test(
        layers.MultiHeadAttention, init_kwargs, X, (B, T, D), weights, tmp_path=tmp_path
    )


@pytest.mark.parametrize(
    "init_kwargs, weights",
    [
        (dict(num_heads=2, intermediate_dim=16), 16),
        (
            dict(
                num_heads=2,
                intermediate_dim=16,
                activation="swiglu",
                normalize_first=True,
                use_causal_mask=True,
                normalization="rms_norm",
            ),
            16,
        ),
        (
            dict(
                num_heads=2,
                intermediate_dim=16,
                activation="gelu",
                dropout=0.1,
                num_kv_heads=1,
                rotary_max_wavelength=10000,
            ),
            16,
        ),
    ],
)
def test_transformer_block(init_kwargs, weights, tmp_path):
    run_layer_test(
        layers.TransformerBlock, init_kwargs, X, (B, T, D), weights, tmp_path=tmp_path
    )


def test_position_encoding(tmp_path):
    run_layer_test(
        layers.PositionEncoding,
        {"max_wavelength": 100},
        X,
        (B, T, D),
        0,
        tmp_path=tmp_path,
    )


def test_position_embedding(tmp_path):
    run_layer_test(
        layers.PositionEmbedding,
        {"sequence_length": 7},
        X,
        (B, T, D),
        1,
        tmp_path=tmp_path,
    )


def test_rotary_embedding(tmp_path):
    x = X.reshape(B, T, 2, 4)
    run_layer_test(
        layers.RotaryEmbedding,
        {"max_wavelength": 100},
        x,
        (B, T, 2, 4),
        0,
        tmp_path=tmp_path,
    )


def test_token_embedding(tmp_path):
    run_layer_test(
        layers.TokenEmbedding,
        {"vocabulary_size": 12, "hidden_dim": D},
        IDS,
        (B, T, D),
        1,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("tie_weights", [True, False])
def test_token_embedding_reverse_projects_in_float32(tie_weights):
    embedding = layers.TokenEmbedding(
        12, D, tie_weights=tie_weights, dtype="mixed_bfloat16"
    )
    assert keras.backend.standardize_dtype(embedding(IDS).dtype) == "bfloat16"
    hidden = keras.ops.cast(X, "bfloat16")
    logits = embedding(hidden, reverse=True)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    table = embedding.embeddings if tie_weights else embedding.reverse_embeddings
    kernel = keras.ops.convert_to_numpy(table)
    kernel = kernel.T if tie_weights else kernel
    expected = keras.ops.convert_to_numpy(keras.ops.cast(hidden, "float32")) @ kernel
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(logits), expected, rtol=1e-5, atol=1e-6
    )
