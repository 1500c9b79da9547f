import keras
import numpy as np
import pytest

import keras_lm
from tests.compression.helpers import batch, logits, tiny_seq2seq
from tests.conftest import requires_tensorflow

pytestmark = [requires_tensorflow, pytest.mark.slow]


def _einsum_and_embedding_layers(model):
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, (keras.layers.EinsumDense, keras.layers.Embedding))
    ]


@pytest.mark.parametrize("mode", ["int8", "int8_weight_only"])
def test_every_projection_and_the_embedding_become_int8_and_survive_keras_files(
    mode, tmp_path
):
    model = tiny_seq2seq()
    inputs, _, _ = batch()
    before = logits(model, inputs)
    assert keras_lm.compression.quantize(model, mode) is model

    layers = _einsum_and_embedding_layers(model)
    # 2 encoder blocks x (4 attention + 2 FFN) + 2 decoder blocks x
    # (8 attention + 2 FFN) + the tied token embedding.
    assert len(layers) == 2 * 6 + 2 * 10 + 1
    assert all(layer.quantization_mode == "int8" for layer in layers)
    assert all(
        layer.kernel.dtype == "int8"
        for layer in layers
        if isinstance(layer, keras.layers.EinsumDense)
    )
    after = logits(model, inputs)
    assert not np.array_equal(before, after)  # it did change the computation
    np.testing.assert_allclose(after, before, atol=0.1)

    path = str(tmp_path / "int8.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(logits(loaded, inputs), after)
    # Saved again after loading (Keras' embedding saving reads the policy).
    again_path = str(tmp_path / "again.keras")
    loaded.save(again_path)
    again = keras.saving.load_model(again_path)
    np.testing.assert_array_equal(logits(again, inputs), after)


def test_weight_only_keeps_float_activations_after_loading(tmp_path):
    inputs, _, _ = batch()
    full = keras_lm.compression.quantize(tiny_seq2seq(), "int8")
    weight_only = keras_lm.compression.quantize(tiny_seq2seq(), "int8_weight_only")
    path = str(tmp_path / "w8.keras")
    weight_only.save(path)
    loaded = keras.saving.load_model(path)
    # Same int8 weights; only the activation rounding differs.
    assert not np.array_equal(logits(full, inputs), logits(weight_only, inputs))
    np.testing.assert_array_equal(logits(loaded, inputs), logits(weight_only, inputs))


def test_quantized_model_still_generates_like_before_saving(tmp_path):
    model = keras_lm.compression.quantize(tiny_seq2seq(), "int8")
    sources = batch()[0]["encoder_token_ids"]
    expected = model.generate(sources, method="beam", num_beams=2, max_new_tokens=4)
    path = str(tmp_path / "int8.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.generate(sources, method="beam", num_beams=2, max_new_tokens=4),
        expected,
    )


@pytest.mark.parametrize("mode", ["int4", "float8", "INT8", None, 8])
def test_unknown_modes_are_refused_naming_the_value(mode):
    with pytest.raises(ValueError, match=f"Received: mode={mode!r}"):
        keras_lm.compression.quantize(tiny_seq2seq(), mode)


def test_quantizing_twice_or_a_plain_keras_model_is_refused():
    model = keras_lm.compression.quantize(tiny_seq2seq(), "int8")
    with pytest.raises(ValueError, match="already quantized"):
        keras_lm.compression.quantize(model, "int8")
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Received: Sequential"):
        keras_lm.compression.quantize(plain, "int8")
