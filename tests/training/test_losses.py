import keras
import numpy as np
import pytest

from keras_lm.losses import MaskedSparseCategoricalCrossentropy

pytestmark = pytest.mark.multibackend

V = 7


def _padded(labels, logits, extra, seed=0):
    """The same rows with `extra` more padding positions holding garbage logits."""
    rng = np.random.default_rng(seed)
    batch = labels.shape[0]
    labels = np.concatenate([labels, np.zeros((batch, extra), "int32")], axis=1)
    junk = 50.0 * rng.normal(size=(batch, extra, logits.shape[-1]))
    logits = np.concatenate([logits, junk.astype("float32")], axis=1)
    return labels, logits


def _example(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.array([[3, 1, 6, 0], [2, 5, 0, 0]], "int32")  # 5 real tokens
    logits = rng.normal(size=(2, 4, V)).astype("float32")
    return labels, logits


def _numpy_loss(labels, logits, eps):
    """Vaswani et al. smoothing by hand: eps spread over all V classes."""
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    target = np.full(log_p.shape, eps / V)
    target[np.arange(labels.shape[0])[:, None], np.arange(labels.shape[1]), labels] += (
        1.0 - eps
    )
    per_token = -(target * log_p).sum(-1)
    real = labels != 0
    return per_token[real].sum() / real.sum()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_matches_hand_computation(label_smoothing):
    labels, logits = _example()
    loss = MaskedSparseCategoricalCrossentropy(label_smoothing=label_smoothing)
    expected = _numpy_loss(labels, logits, label_smoothing)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, rtol=1e-6)


def test_smoothing_changes_the_value():
    labels, logits = _example()
    plain = MaskedSparseCategoricalCrossentropy()(labels, logits)
    smoothed = MaskedSparseCategoricalCrossentropy(label_smoothing=0.1)(labels, logits)
    assert abs(float(plain) - float(smoothed)) > 1e-3


@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_padding_amount_does_not_change_the_loss(with_sample_weight):
    labels, logits = _example()
    loss = MaskedSparseCategoricalCrossentropy(label_smoothing=0.1)
    values = []
    for extra in (0, 5):
        y, p = _padded(labels, logits, extra)
        weight = (y != 0).astype("float32") if with_sample_weight else None
        values.append(float(loss(y, p, sample_weight=weight)))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-6)
    # An unmasked mean over B * T would differ between the two.
    unmasked = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert abs(float(unmasked(*_padded(labels, logits, 5))) - values[1]) > 1e-2


def test_sample_weight_is_a_weighted_mean():
    labels, logits = _example()
    weight = np.array([[1.0, 1.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0]], "float32")
    loss = MaskedSparseCategoricalCrossentropy(reduction="none")
    per_token = np.asarray(loss(labels, logits))
    expected = (per_token * weight).sum() / (weight * (labels != 0)).sum()
    mean = MaskedSparseCategoricalCrossentropy()(labels, logits, sample_weight=weight)
    np.testing.assert_allclose(float(mean), expected, rtol=1e-6)


def test_ignore_id_outside_the_vocabulary():
    labels, logits = _example()
    moved = np.where(labels == 0, -100, labels)
    expected = MaskedSparseCategoricalCrossentropy()(labels, logits)
    value = MaskedSparseCategoricalCrossentropy(ignore_id=-100)(moved, logits)
    np.testing.assert_allclose(float(value), float(expected), rtol=1e-6)


def test_probabilities_input():
    labels, logits = _example()
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    from_probs = MaskedSparseCategoricalCrossentropy(from_logits=False)
    expected = _numpy_loss(labels, logits, 0.0)
    np.testing.assert_allclose(float(from_probs(labels, probs)), expected, rtol=1e-5)


def test_bfloat16_logits_are_reduced_in_float32():
    labels, logits = _example()
    bf16 = keras.ops.cast(logits, "bfloat16")
    loss = MaskedSparseCategoricalCrossentropy(label_smoothing=0.1)
    value = loss(labels, bf16)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(bf16, "float32"))
    np.testing.assert_allclose(
        float(value), _numpy_loss(labels, rounded, 0.1), rtol=1e-6
    )


def test_all_padding_gives_zero_not_nan():
    loss = MaskedSparseCategoricalCrossentropy()
    value = loss(np.zeros((2, 3), "int32"), np.ones((2, 3, V), "float32"))
    assert float(value) == 0.0


def test_config_round_trip():
    loss = MaskedSparseCategoricalCrossentropy(
        label_smoothing=0.2, ignore_id=-1, reduction="sum", name="ce"
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert isinstance(restored, MaskedSparseCategoricalCrossentropy)
    assert restored.get_config() == loss.get_config()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
        ({"reduction": "mean"}, "reduction='mean'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskedSparseCategoricalCrossentropy(**kwargs)


def test_ignore_id_none_weights_every_label_by_sample_weight_only():
    # GPT-2 has no padding id; its id 0 is the token "!" and must be scored.
    labels, logits = _example()
    weight = np.array([[1.0, 0.0, 2.0, 1.0], [1.0, 1.0, 0.5, 3.0]], "float32")
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
    loss = MaskedSparseCategoricalCrossentropy(ignore_id=None)
    np.testing.assert_allclose(
        float(loss(labels, logits, sample_weight=weight)),
        (nll * weight).sum() / weight.sum(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(float(loss(labels, logits)), nll.mean(), rtol=1e-6)
