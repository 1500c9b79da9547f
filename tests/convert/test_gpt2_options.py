"""The model options GPT-2 needs, with keras_lm's defaults unchanged."""

import keras
import numpy as np
import pytest

from keras_lm.layers import TransformerBlock
from keras_lm.models import TransformerLM


def tiny_lm(**options):
    return TransformerLM(
        vocabulary_size=40,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
        **options,
    )


@pytest.mark.multibackend
def test_scale_embeddings_multiplies_token_embeddings_by_sqrt_width():
    ids = np.array([[1, 5, 7], [0, 39, 2]], "int32")
    options = dict(position_encoding="learned", tie_embeddings=False)
    scaled = tiny_lm(**options)
    plain = tiny_lm(scale_embeddings=False, **options)
    plain.set_weights(scaled.get_weights())
    assert not np.allclose(
        scaled({"token_ids": ids}), plain({"token_ids": ids}), atol=1e-4
    )
    # Untied, the table feeds the input only: sqrt(D) moves into the table.
    table = keras.ops.convert_to_numpy(scaled.token_embedding.embeddings)
    plain.token_embedding.embeddings.assign(table * np.sqrt(8))
    np.testing.assert_allclose(
        plain({"token_ids": ids}), scaled({"token_ids": ids}), rtol=1e-5, atol=1e-5
    )
    cache = plain.empty_cache(2, 3)
    stepped, _ = plain.decode_step(ids, cache, 0)
    np.testing.assert_allclose(
        stepped, scaled({"token_ids": ids}), rtol=1e-5, atol=1e-5
    )
    assert scaled.get_config()["scale_embeddings"] is True
    assert TransformerLM.from_config(plain.get_config()).scale_embeddings is False


@pytest.mark.multibackend
@pytest.mark.parametrize(
    "activation, function",
    [
        ("gelu_approximate", lambda x: keras.ops.gelu(x, approximate=True)),
        ("silu", keras.ops.silu),
    ],
)
def test_new_activations_apply_to_the_feed_forward_network(activation, function):
    block = TransformerBlock(num_heads=2, intermediate_dim=16, activation=activation)
    x = np.random.default_rng(0).normal(size=(1, 3, 8)).astype("float32")
    block(x)
    hidden = block.ffn_intermediate(x.reshape(3, 8))
    expected = block.ffn_output(function(hidden))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(block._feed_forward(x)).reshape(3, 8),
        keras.ops.convert_to_numpy(expected),
        rtol=1e-5,
        atol=1e-6,
    )
    config = block.get_config()
    assert TransformerBlock.from_config(config).activation == activation


def test_default_configuration_is_unchanged():
    model = tiny_lm()
    config = model.get_config()
    assert config["scale_embeddings"] is True
    assert config["activation"] == "gelu"
    assert config["generation_config"] is None


def test_generation_config_round_trips_and_rejects_unknown_keys(tmp_path):
    config = {"method": "beam", "num_beams": 2, "suppress_ids": [3]}
    model = tiny_lm(generation_config=config)
    again = TransformerLM.from_config(model.get_config())
    assert again.generation_config == config
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.generation_config == config
    with pytest.raises(ValueError, match="num_beam"):
        tiny_lm(generation_config={"num_beam": 2})
