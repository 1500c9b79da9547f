"""One helper every layer test goes through (STYLE.md, item 6)."""

import keras
import numpy as np


def _to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights,
    call_kwargs=None,
    tmp_path=None,
    run_fit=True,
):
    """Config round trip, weight count, symbolic/eager shapes, fit, save, bf16."""
    call_kwargs = call_kwargs or {}

    layer = layer_cls(**init_kwargs)
    eager = layer(input_data, **call_kwargs)
    assert tuple(eager.shape) == tuple(expected_output_shape)
    assert len(layer.trainable_weights) == expected_num_trainable_weights

    # get_config mirrors __init__: a rebuilt layer has the same config and,
    # with the weights copied, the same outputs.
    config = layer.get_config()
    for key in init_kwargs:
        assert key in config, f"get_config() lacks {key!r}"
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    clone(input_data, **call_kwargs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(
        _to_numpy(clone(input_data, **call_kwargs)), _to_numpy(eager), atol=1e-6
    )

    # Symbolic call gives the same shape (batch left unknown).
    symbolic_input = keras.Input(
        shape=tuple(input_data.shape[1:]),
        dtype=keras.backend.standardize_dtype(input_data.dtype),
    )
    symbolic = layer_cls(**init_kwargs)(symbolic_input, **call_kwargs)
    assert tuple(symbolic.shape[1:]) == tuple(expected_output_shape[1:])

    # A functional model around the layer trains a step and survives .keras.
    model = keras.Model(
        symbolic_input, layer_cls(**init_kwargs)(symbolic_input, **call_kwargs)
    )
    if run_fit and expected_num_trainable_weights:
        model.compile(optimizer="sgd", loss="mse")
        target = np.zeros(expected_output_shape, "float32")
        history = model.fit(
            input_data, target, epochs=1, batch_size=len(input_data), verbose=0
        )
        assert np.isfinite(history.history["loss"][0])
    if tmp_path is not None:
        path = str(tmp_path / f"{layer_cls.__name__}.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        np.testing.assert_allclose(
            _to_numpy(restored(input_data)), _to_numpy(model(input_data)), atol=1e-6
        )

    # bfloat16 compute with float32 variables.
    policy_layer = layer_cls(**init_kwargs, dtype="mixed_bfloat16")
    output = policy_layer(input_data, **call_kwargs)
    assert keras.backend.standardize_dtype(output.dtype) == "bfloat16"
    for weight in policy_layer.weights:
        assert keras.backend.standardize_dtype(weight.dtype) == "float32"
    return layer
