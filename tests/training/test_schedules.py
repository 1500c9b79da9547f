import math

import keras
import numpy as np
import pytest

from keras_lm.schedules import InverseSqrtWarmup, WarmupCosine

pytestmark = pytest.mark.multibackend


def _values(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_inverse_sqrt_matches_the_paper_formula():
    schedule = InverseSqrtWarmup(hidden_dim=512, warmup_steps=4000, scale=2.0)
    for step in (1, 10, 3999, 4000, 4001, 100_000):
        expected = 2.0 * 512**-0.5 * min(step**-0.5, step * 4000**-1.5)
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-6)


def test_inverse_sqrt_peaks_at_warmup_and_is_finite_at_zero():
    schedule = InverseSqrtWarmup(hidden_dim=64, warmup_steps=100)
    values = _values(schedule, range(0, 400))
    assert np.all(np.isfinite(values)) and values[0] > 0
    assert int(np.argmax(values)) == 100
    np.testing.assert_allclose(values.max(), (64 * 100) ** -0.5, rtol=1e-6)


def test_inverse_sqrt_with_peak_reaches_that_peak_then_decays():
    schedule = InverseSqrtWarmup.with_peak(1e-3, hidden_dim=256, warmup_steps=300)
    values = _values(schedule, range(0, 1201))
    assert int(np.argmax(values)) == 300
    np.testing.assert_allclose(values.max(), 1e-3, rtol=1e-6)
    # Past warmup the rate falls as 1/sqrt(step): 4x the steps, half the rate.
    np.testing.assert_allclose(values[1200], 5e-4, rtol=1e-6)
    restored = InverseSqrtWarmup.from_config(schedule.get_config())
    np.testing.assert_allclose(_values(restored, [300]), [1e-3], rtol=1e-6)
    with pytest.raises(ValueError, match="peak_learning_rate"):
        InverseSqrtWarmup.with_peak(0.0, hidden_dim=256, warmup_steps=300)
    with pytest.raises(ValueError, match="hidden_dim=-1"):
        InverseSqrtWarmup.with_peak(1e-3, hidden_dim=-1, warmup_steps=300)


def test_warmup_cosine_shape():
    schedule = WarmupCosine(
        peak_learning_rate=1e-3,
        warmup_steps=10,
        total_steps=110,
        final_learning_rate=1e-4,
    )
    values = _values(schedule, range(0, 131))
    assert np.all(np.isfinite(values))
    # Ten warmup updates, steps 0 to 9: the first is not wasted at rate 0,
    # and the last one is at the peak.
    np.testing.assert_allclose(values[:10], 1e-4 * np.arange(1, 11), rtol=1e-6)
    assert int(np.argmax(values)) == 9
    assert values[10] < values[9]
    # Cosine from the peak at step 9 to the final rate at step 110.
    progress = (60 - 9) / (110 - 9)
    expected = 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * progress))
    np.testing.assert_allclose(values[60], expected, rtol=1e-5)
    np.testing.assert_allclose(values[110:], 1e-4, rtol=1e-5)
    assert np.all(np.diff(values[9:111]) <= 1e-12)


def test_warmup_cosine_first_update_moves_the_weights():
    schedule = WarmupCosine(peak_learning_rate=0.1, warmup_steps=4, total_steps=8)
    variable = keras.Variable(1.0)
    optimizer = keras.optimizers.SGD(learning_rate=schedule)
    optimizer.apply([keras.ops.convert_to_tensor(1.0)], [variable])
    np.testing.assert_allclose(float(variable), 1.0 - 0.1 / 4, rtol=1e-6)


def test_warmup_cosine_without_warmup_starts_at_peak():
    schedule = WarmupCosine(peak_learning_rate=1.0, warmup_steps=0, total_steps=10)
    np.testing.assert_allclose(_values(schedule, [0, 10]), [1.0, 0.0], atol=1e-6)
    one_step = WarmupCosine(peak_learning_rate=1.0, warmup_steps=1, total_steps=10)
    np.testing.assert_allclose(
        _values(one_step, range(11)), _values(schedule, range(11)), atol=1e-6
    )


def test_schedules_drive_an_optimizer():
    schedule = InverseSqrtWarmup(hidden_dim=16, warmup_steps=10)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    np.testing.assert_allclose(
        float(optimizer.learning_rate), float(schedule(0)), rtol=1e-6
    )


@pytest.mark.parametrize(
    "schedule",
    [
        InverseSqrtWarmup(hidden_dim=32, warmup_steps=8, scale=0.5),
        WarmupCosine(1e-3, 5, 50, final_learning_rate=1e-5),
    ],
)
def test_config_round_trip(schedule):
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(schedule)
    )
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(float(restored(7)), float(schedule(7)), rtol=1e-7)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: InverseSqrtWarmup(hidden_dim=0), "hidden_dim=0"),
        (lambda: InverseSqrtWarmup(64, warmup_steps=-1), "warmup_steps=-1"),
        (lambda: WarmupCosine(1e-3, 10, 10), "total_steps=10"),
        (lambda: WarmupCosine(1e-3, 1, 10, final_learning_rate=1.0), "final_"),
    ],
)
def test_bad_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
