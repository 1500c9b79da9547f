import keras
import numpy as np
import pytest

from keras_lm.losses import MaskedSparseCategoricalCrossentropy
from keras_lm.metrics import MaskedAccuracy, Perplexity

pytestmark = pytest.mark.multibackend

V = 5


def _one_hot_logits(predicted):
    return (10.0 * np.eye(V)[predicted]).astype("float32")


def test_accuracy_counts_only_real_tokens():
    labels = np.array([[1, 2, 3, 0, 0], [4, 4, 0, 0, 0]], "int32")
    # Right on 3 of the 5 real tokens; every padding position predicts 0,
    # which equals its label and would count as correct if not ignored.
    predicted = np.array([[1, 2, 1, 0, 0], [4, 3, 0, 0, 0]])
    metric = MaskedAccuracy()
    metric.update_state(labels, _one_hot_logits(predicted))
    np.testing.assert_allclose(float(metric.result()), 3 / 5, rtol=1e-6)


def test_accuracy_accumulates_over_tokens_not_batches():
    metric = MaskedAccuracy()
    metric.update_state(np.array([[1, 0, 0]]), _one_hot_logits(np.array([[1, 0, 0]])))
    metric.update_state(np.array([[1, 2, 3]]), _one_hot_logits(np.array([[2, 2, 2]])))
    # 2 right out of 4 real tokens, not the mean (1/1 + 1/3) / 2 of batches.
    np.testing.assert_allclose(float(metric.result()), 0.5, rtol=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_perplexity_is_exp_of_unsmoothed_masked_loss_and_ignores_padding():
    rng = np.random.default_rng(0)
    labels = np.array([[1, 2, 3, 0], [4, 1, 0, 0]], "int32")
    logits = rng.normal(size=(2, 4, V)).astype("float32")
    metric = Perplexity()
    metric.update_state(labels, logits)
    expected = np.exp(float(MaskedSparseCategoricalCrossentropy()(labels, logits)))
    np.testing.assert_allclose(float(metric.result()), expected, rtol=1e-5)

    padded_labels = np.pad(labels, ((0, 0), (0, 3)))
    padded_logits = np.concatenate(
        [logits, 100.0 * rng.normal(size=(2, 3, V)).astype("float32")], axis=1
    )
    padded = Perplexity()
    padded.update_state(padded_labels, padded_logits)
    np.testing.assert_allclose(
        float(padded.result()), float(metric.result()), rtol=1e-6
    )


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    metric = Perplexity()
    metric.update_state(np.array([[1, 2, 0]]), np.zeros((1, 3, V), "float32"))
    np.testing.assert_allclose(float(metric.result()), V, rtol=1e-5)


def test_sample_weight_scales_tokens():
    labels = np.array([[1, 2]], "int32")
    predicted = np.array([[1, 0]])
    metric = MaskedAccuracy()
    metric.update_state(
        labels, _one_hot_logits(predicted), sample_weight=np.array([[3.0, 1.0]])
    )
    np.testing.assert_allclose(float(metric.result()), 0.75, rtol=1e-6)


def test_bfloat16_predictions():
    rng = np.random.default_rng(1)
    labels = np.array([[1, 2, 0]], "int32")
    logits = rng.normal(size=(1, 3, V)).astype("float32")
    metric = Perplexity()
    metric.update_state(labels, keras.ops.cast(logits, "bfloat16"))
    assert np.isfinite(float(metric.result()))
    assert keras.backend.standardize_dtype(metric.result().dtype) == "float32"


@pytest.mark.parametrize("cls", [MaskedAccuracy, Perplexity])
def test_config_round_trip(cls):
    metric = cls(ignore_id=-1, name="m")
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert isinstance(restored, cls)
    assert restored.get_config() == metric.get_config()


def test_ignore_id_none_counts_every_label():
    labels = np.array([[1, 2, 0, 0]], "int32")
    predicted = np.array([[1, 0, 0, 3]])
    metric = MaskedAccuracy(ignore_id=None)
    metric.update_state(labels, _one_hot_logits(predicted))
    np.testing.assert_allclose(float(metric.result()), 2 / 4, rtol=1e-6)
    weighted = MaskedAccuracy(ignore_id=None)
    weighted.update_state(
        labels, _one_hot_logits(predicted), sample_weight=np.array([[1, 1, 2, 0]])
    )
    np.testing.assert_allclose(float(weighted.result()), 3 / 4, rtol=1e-6)

    logits = np.random.default_rng(2).normal(size=(1, 4, V)).astype("float32")
    perplexity = Perplexity(ignore_id=None)
    perplexity.update_state(labels, logits)
    loss = MaskedSparseCategoricalCrossentropy(ignore_id=None)(labels, logits)
    np.testing.assert_allclose(
        float(perplexity.result()), np.exp(float(loss)), rtol=1e-5
    )
