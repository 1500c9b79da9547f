import logging
import os
from types import SimpleNamespace
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lm import training
from keras_lm.losses import MaskedSparseCategoricalCrossentropy
from keras_lm.schedules import InverseSqrtWarmup
from keras_lm.special_ids import SpecialIds
from tests.training import training_helpers

V = training_helpers.VOCAB


def tiny_lm(hidden_dim=8):
    """Position-wise LM: a token's logits do not depend on the padding after it."""
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    hidden = keras.layers.Embedding(V, hidden_dim)(token_ids)
    logits = keras.layers.Dense(V)(keras.layers.Dense(hidden_dim, "tanh")(hidden))
    return keras.Model({"token_ids": token_ids}, logits)


def lm_batch(extra_padding, with_sample_weight=True):
    tokens = np.array([[5, 3, 7, 2], [4, 6, 0, 0]], "int32")
    tokens = np.pad(tokens, ((0, 0), (0, extra_padding)))
    labels = np.pad(tokens[:, 1:], ((0, 0), (0, 1)))
    batch = ({"token_ids": tokens}, labels)
    if with_sample_weight:
        batch += ((labels != 0).astype("float32"),)
    return tf.data.Dataset.from_tensors(batch)


class HiddenDimModel(keras.Model):
    """A functional model whose config names its width, as keras_lm models do."""

    def __init__(self, hidden_dim=8, **kwargs):
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        logits = keras.layers.Dense(V)(keras.layers.Embedding(V, hidden_dim)(token_ids))
        super().__init__({"token_ids": token_ids}, logits, **kwargs)
        self.hidden_dim = hidden_dim

    def get_config(self):
        return {"hidden_dim": self.hidden_dim}


def test_compile_model_defaults_follow_the_paper():
    model = training.compile_model(HiddenDimModel(hidden_dim=16), warmup_steps=10)
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.98, 1e-9)
    assert optimizer.global_clipnorm == 1.0
    schedule = optimizer._learning_rate
    assert isinstance(schedule, InverseSqrtWarmup)
    assert (schedule.hidden_dim, schedule.warmup_steps) == (16, 10)
    assert isinstance(model.loss, MaskedSparseCategoricalCrossentropy)
    assert model.loss.label_smoothing == 0.1
    assert model.jit_compile


def test_compile_model_without_hidden_dim_asks_for_a_learning_rate():
    with pytest.raises(ValueError, match="Pass learning_rate="):
        training.compile_model(tiny_lm())


@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_fit_and_evaluate_report_the_masked_mean(with_sample_weight):
    keras.utils.set_random_seed(0)
    model = tiny_lm()
    training.compile_model(
        model, learning_rate=1e-2, label_smoothing=0.1, jit_compile=False
    )
    short, long = (lm_batch(extra, with_sample_weight) for extra in (0, 6))
    evaluated = [model.evaluate(d, verbose=0, return_dict=True) for d in (short, long)]
    for key in ("loss", "accuracy", "perplexity"):
        np.testing.assert_allclose(evaluated[0][key], evaluated[1][key], rtol=1e-5)
    x, y, *_ = next(iter(short))
    direct = model.loss(y, model(x))
    np.testing.assert_allclose(evaluated[0]["loss"], float(direct), rtol=1e-5)

    weights = model.get_weights()
    fitted = []
    for data in (short, long):
        model.set_weights(weights)
        fitted.append(model.fit(data, epochs=1, verbose=0).history["loss"][0])
    np.testing.assert_allclose(fitted[0], fitted[1], rtol=1e-5)
    np.testing.assert_allclose(fitted[0], evaluated[0]["loss"], rtol=1e-5)


def test_mixed_precision_trains_with_float32_loss():
    assert training.set_mixed_precision(True) == "mixed_bfloat16"
    model = tiny_lm()
    assert model.layers[-1].compute_dtype == "bfloat16"
    training.compile_model(model, learning_rate=1e-2, jit_compile=False)
    history = model.fit(lm_batch(2), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert training.set_mixed_precision(False) == "float32"
    with pytest.raises(ValueError, match="dtype='int8'"):
        training.set_mixed_precision(True, dtype="int8")


def _peaked_transformer(kind):
    """A tiny real model, dropout on, one head of size 8, whose query and key
    kernels are 137 * identity: after a layer norm every token has squared
    norm 8, so a token's unscaled q.k with itself is 8 * 137**2 = 150152, past
    float16's 65504, while the scaled value (53088) fits. It stands for the
    attention logits that grow during long runs."""
    from keras_lm import models

    config = dict(
        vocabulary_size=V,
        num_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
        dropout=0.1,
    )
    if kind == "lm":
        model = models.TransformerLM(num_layers=1, **config)
    else:
        model = models.TransformerSeq2Seq(
            num_encoder_layers=1, num_decoder_layers=1, **config
        )
    eye = 137.0 * np.eye(8, dtype="float32")[:, None, :]  # [D, N, H]
    for layer in model._flatten_layers():
        if type(layer).__name__ == "MultiHeadAttention":
            layer.query_dense.kernel.assign(eye)
            layer.key_dense.kernel.assign(eye)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lm", "seq2seq"])
def test_mixed_float16_training_with_dropout_stays_finite_and_close(kind):
    inputs, labels, weights = training_helpers.translation_arrays(8)
    if kind == "lm":
        inputs = {"token_ids": inputs["decoder_token_ids"]}
    data = tf.data.Dataset.from_tensor_slices((inputs, labels, weights)).batch(4)
    results = {}
    for policy in ("float32", "mixed_float16"):
        keras.config.set_dtype_policy(policy)
        keras.utils.set_random_seed(0)
        model = _peaked_transformer(kind)
        training.compile_model(model, learning_rate=1e-3, jit_compile=False)
        history = model.fit(data, epochs=2, shuffle=False, verbose=0).history
        assert np.all(np.isfinite(history["loss"])), (policy, history["loss"])
        # Dropout masks drawn in float16 differ from float32 ones, so compare
        # the trained models without dropout.
        results[policy] = model.evaluate(data, verbose=0, return_dict=True)["loss"]
    keras.config.set_dtype_policy("float32")
    np.testing.assert_allclose(results["mixed_float16"], results["float32"], rtol=0.02)


def test_default_callbacks(tmp_path):
    callbacks = training.default_callbacks(str(tmp_path), monitor="loss")
    types = [type(c) for c in callbacks]
    assert types[:3] == [
        training.StopOnNaN,
        training.ResumableBackup,
        training.AtomicModelCheckpoint,
    ]
    backup, checkpoint = callbacks[1], callbacks[2]
    assert backup.backup_dir == os.path.join(tmp_path, "backup")
    assert checkpoint.filepath == os.path.join(tmp_path, "checkpoints", "model.keras")
    assert checkpoint.monitor == "loss" and checkpoint.save_best_only
    assert callbacks[0].raise_error
    with pytest.raises(ValueError, match="output_dir=''"):
        training.default_callbacks("")


def test_default_callbacks_keep_non_chief_workers_apart(tmp_path):
    strategy = mock.create_autospec(
        tf.distribute.MultiWorkerMirroredStrategy, instance=True
    )
    strategy.cluster_resolver = SimpleNamespace(
        task_type="worker",
        task_id=1,
        cluster_spec=lambda: tf.train.ClusterSpec({"worker": ["a:1", "b:2"]}),
    )
    callbacks = training.default_callbacks(str(tmp_path), strategy=strategy)
    assert callbacks[1].backup_dir == os.path.join(
        tmp_path, "workers", "worker_1", "backup"
    )


@pytest.mark.slow
def test_train_end_to_end_learns_and_checkpoints(tmp_path):
    def build_model():
        keras.utils.set_random_seed(0)
        return training_helpers.tiny_seq2seq()

    data = training_helpers.translation_dataset(16, batch_size=4)
    history = training.train(
        build_model,
        data,
        validation_data=data,
        epochs=4,
        output_dir=str(tmp_path),
        compile_options={"learning_rate": 0.05, "label_smoothing": 0.0},
        verbose=0,
    )
    logs = history.history
    assert set(logs) >= {"loss", "accuracy", "perplexity", "val_loss"}
    assert logs["loss"][-1] < logs["loss"][0]
    assert logs["val_perplexity"][-1] < logs["val_perplexity"][0]
    assert os.path.exists(os.path.join(tmp_path, "checkpoints", "model.keras"))
    # The backup is deleted after a run that ends normally.
    assert not os.path.exists(os.path.join(tmp_path, "backup"))
    assert isinstance(history.model, keras.Model)


def test_train_rejects_a_model_instead_of_a_builder():
    with pytest.raises(ValueError, match="zero-argument callable"):
        training.train(tiny_lm(), lm_batch(0))


def nan_at_batch(bad_batch, num_batches=4):
    """Translation batches whose sample weights are NaN in batch `bad_batch`."""
    inputs, labels, weights = training_helpers.translation_arrays(4 * num_batches)
    weights[4 * bad_batch] = np.nan
    return tf.data.Dataset.from_tensor_slices((inputs, labels, weights)).batch(4)


def test_nan_loss_stops_training_and_names_the_step(caplog):
    guard = training.StopOnNaN()
    with caplog.at_level(logging.ERROR, logger="keras_lm"):
        history = training.train(
            training_helpers.tiny_seq2seq,
            nan_at_batch(2),
            epochs=3,
            callbacks=[guard],
            compile_options={"learning_rate": 1e-2, "jit_compile": False},
            verbose=0,
        )
    assert (guard.stopped_epoch, guard.stopped_batch, guard.stopped_step) == (0, 2, 2)
    assert history.epoch == [0]
    assert "training step 2 (epoch 0, batch 2)" in caplog.text


def test_nan_raise_keeps_the_backup_to_resume_from(tmp_path):
    compile_options = {"learning_rate": 1e-2, "jit_compile": False}
    clean = training_helpers.translation_dataset(16, batch_size=4)
    # Epoch 0 takes the 4 clean batches; epoch 1 starts with a NaN batch.
    poisoned = clean.concatenate(nan_at_batch(0))
    with pytest.raises(RuntimeError, match=r"training step 4 \(epoch 1, batch 0\)"):
        training.train(
            training_helpers.tiny_seq2seq,
            poisoned,
            epochs=3,
            steps_per_epoch=4,
            output_dir=str(tmp_path),
            compile_options=compile_options,
            verbose=0,
        )
    assert os.path.exists(os.path.join(tmp_path, "backup"))
    resumed = training.train(
        training_helpers.tiny_seq2seq,
        clean.repeat(),
        epochs=3,
        steps_per_epoch=4,
        output_dir=str(tmp_path),
        compile_options=compile_options,
        verbose=0,
    )
    assert resumed.epoch == [1, 2]


def test_time_limit_stops_after_the_batch_that_crosses_it():
    limit = training.TimeLimit(minutes=1e-9)
    history = training.train(
        training_helpers.tiny_seq2seq,
        training_helpers.translation_dataset(12, batch_size=4),
        epochs=3,
        callbacks=[limit],
        compile_options={"learning_rate": 1e-2, "jit_compile": False},
        verbose=0,
    )
    assert limit.stopped_early
    assert history.epoch == [0]
    assert int(history.model.optimizer.iterations) == 1
    with pytest.raises(ValueError, match="minutes=0"):
        training.TimeLimit(minutes=0)


def test_time_limit_passed_during_validation_starts_no_new_epoch():
    # A fake clock that jumps past the limit while epoch 0 is validated. The
    # first version only looked at the clock after training batches, so the
    # run began epoch 1, trained one batch and validated again.
    from keras_lm.training import callbacks as callbacks_module

    clock = {"now": 0.0}

    class JumpDuringValidation(keras.callbacks.Callback):
        def on_test_end(self, logs=None):
            clock["now"] = 120.0

    limit = training.TimeLimit(minutes=1)
    fake_time = SimpleNamespace(monotonic=lambda: clock["now"])
    with mock.patch.object(callbacks_module, "time", fake_time):
        history = training.train(
            training_helpers.tiny_seq2seq,
            training_helpers.translation_dataset(16, batch_size=4).repeat(),
            validation_data=training_helpers.translation_dataset(8, batch_size=4),
            epochs=3,
            steps_per_epoch=2,
            callbacks=[JumpDuringValidation(), limit],
            compile_options={"learning_rate": 1e-2, "jit_compile": False},
            verbose=0,
        )
    assert limit.stopped_early
    assert history.epoch == [0]
    assert int(history.model.optimizer.iterations) == 2


def _weighted_batches():
    """Two translation batches whose sample weights are 0 on some real tokens
    and 2 on others, so weighted and unweighted metrics differ."""
    inputs, labels, weights = training_helpers.translation_arrays(8, seed=3)
    rng = np.random.default_rng(4)
    weights *= rng.choice([0.0, 1.0, 2.0], size=weights.shape).astype("float32")
    return inputs, labels, weights


def _hand_metrics(model, inputs, labels, weights, pad_id=0):
    """Weighted token accuracy and perplexity over real tokens, in numpy."""
    logits = np.asarray(model(inputs), "float64")
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    w = weights * (labels != pad_id)
    picked = np.take_along_axis(log_p, labels[..., None], -1)[..., 0]
    hits = (logits.argmax(-1) == labels).astype("float64")
    return {
        "accuracy": (hits * w).sum() / w.sum(),
        "perplexity": np.exp(-(picked * w).sum() / w.sum()),
    }


def test_fit_metrics_use_sample_weight_like_the_multi_worker_loop():
    from keras_lm.training import multi_worker

    inputs, labels, weights = _weighted_batches()
    data = tf.data.Dataset.from_tensor_slices((inputs, labels, weights)).batch(4)
    # A zero learning rate keeps the weights, so both batches are scored by
    # the model the hand computation sees.
    options = {"learning_rate": 0.0, "jit_compile": False}
    keras.utils.set_random_seed(0)
    model = training_helpers.tiny_seq2seq()
    initial = model.get_weights()
    expected = _hand_metrics(model, inputs, labels, weights)
    unweighted = _hand_metrics(model, inputs, labels, np.ones_like(weights))
    assert abs(expected["accuracy"] - unweighted["accuracy"]) > 1e-3

    training.compile_model(model, **options)
    fit_logs = model.fit(data, shuffle=False, verbose=0).history

    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        loop_model = training_helpers.tiny_seq2seq()
        loop_model.set_weights(initial)
        metrics = training.default_metrics()
        training.compile_model(loop_model, metrics=metrics, **options)
    loop_logs = multi_worker.fit_multi_worker(
        loop_model, data, strategy, metrics, verbose=0
    ).history
    for key, value in expected.items():
        np.testing.assert_allclose(fit_logs[key][0], value, rtol=1e-5, err_msg=key)
        np.testing.assert_allclose(loop_logs[key][0], value, rtol=1e-5, err_msg=key)


NO_PADDING = SpecialIds(pad_id=None, unk_id=None, bos_id=None, eos_id=12)


@pytest.mark.parametrize(
    "special_ids, ignore_id, expected",
    [
        ("absent", training.compile.MODEL_PAD_ID, 0),
        (None, training.compile.MODEL_PAD_ID, 0),
        (NO_PADDING, training.compile.MODEL_PAD_ID, None),
        ({"pad_id": 5, "eos_id": 6}, training.compile.MODEL_PAD_ID, 5),
        (NO_PADDING, 7, 7),
        ({"pad_id": 5}, None, None),
    ],
)
def test_compile_model_ignores_the_models_pad_id(special_ids, ignore_id, expected):
    model = tiny_lm()
    if special_ids != "absent":
        model.special_ids = special_ids
    options = (
        {} if ignore_id is training.compile.MODEL_PAD_ID else {"ignore_id": ignore_id}
    )
    metrics = training.default_metrics(model=model, **options)
    training.compile_model(model, learning_rate=1e-3, metrics=metrics, **options)
    assert model.loss.ignore_id == expected
    assert [m.ignore_id for m in metrics] == [expected, expected]
    compiled = training.compile_model(tiny_lm(), learning_rate=1e-3, ignore_id=3)
    assert compiled.loss.ignore_id == 3


def test_train_without_padding_scores_label_zero_as_a_token():
    # GPT-2's id 0 is the token "!": with pad_id=None it is learned and scored.
    tokens = np.array([[5, 0, 7, 0, 2], [0, 6, 0, 1, 3]], "int32")
    inputs, labels = {"token_ids": tokens[:, :-1]}, tokens[:, 1:]
    weights = np.array([[1, 1, 2, 1], [1, 0, 1, 1]], "float32")
    data = tf.data.Dataset.from_tensors((inputs, labels, weights))

    def build_model():
        keras.utils.set_random_seed(0)
        model = tiny_lm()
        model.special_ids = NO_PADDING
        return model

    expected = _hand_metrics(build_model(), inputs, labels, weights, pad_id=None)
    history = training.train(
        build_model,
        data,
        callbacks=[],
        compile_options={"learning_rate": 0.0, "jit_compile": False},
        verbose=0,
    )
    assert history.model.loss.ignore_id is None
    for key, value in expected.items():
        np.testing.assert_allclose(history.history[key][0], value, rtol=1e-5)


def _real_lm():
    keras.utils.set_random_seed(0)
    return training_helpers.tiny_transformer_lm()


@pytest.mark.parametrize("key, bad_id", [("token_ids", -1), ("labels", V)])
def test_train_refuses_ids_outside_the_vocabulary(key, bad_id):
    tokens = training_helpers.translation_arrays(4)[0]["decoder_token_ids"]
    batch = {"token_ids": tokens.copy(), "labels": tokens.copy()}
    batch[key][1, 1] = bad_id
    data = tf.data.Dataset.from_tensors(
        ({"token_ids": batch["token_ids"]}, batch["labels"])
    )
    with pytest.raises(ValueError, match=rf"{key} holds id {bad_id}, .*\[0, {V}\)"):
        training.train(
            _real_lm, data, compile_options={"learning_rate": 1e-3}, verbose=0
        )


def test_train_accepts_labels_at_an_ignore_id_outside_the_vocabulary():
    inputs, labels, _ = training_helpers.translation_arrays(4)
    labels = np.where(labels == 0, -100, labels)
    data = tf.data.Dataset.from_tensors(
        ({"token_ids": inputs["decoder_token_ids"]}, labels)
    )
    history = training.train(
        _real_lm,
        data,
        callbacks=[],
        compile_options={
            "learning_rate": 1e-3,
            "ignore_id": -100,
            "jit_compile": False,
        },
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])
