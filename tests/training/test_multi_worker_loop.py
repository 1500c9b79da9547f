"""keras_lm's own training loop, run in this process under a one-worker
MultiWorkerMirroredStrategy (no TF_CONFIG). Two real workers are in
test_distributed_training.py."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lm import training
from keras_lm.training import multi_worker
from tests.training import training_helpers

COMPILE = {"learning_rate": 0.05, "jit_compile": False}


@pytest.fixture(scope="module")
def strategy():
    return tf.distribute.MultiWorkerMirroredStrategy()


def build_model():
    keras.utils.set_random_seed(0)
    return training_helpers.tiny_seq2seq()


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []
        self.batch_logs = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(f"batch {batch}")
        self.batch_logs.append(dict(logs))

    def on_test_begin(self, logs=None):
        self.events.append("test_begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs=None):
        self.events.append("train_end")


@pytest.mark.slow
def test_loop_matches_model_fit(strategy):
    train_data = training_helpers.translation_dataset(12, batch_size=4, seed=1)
    val_data = training_helpers.translation_dataset(8, batch_size=4, seed=2)
    runs = []
    for run_strategy in (tf.distribute.get_strategy(), strategy):
        history = training.train(
            build_model,
            train_data,
            validation_data=val_data,
            epochs=2,
            strategy=run_strategy,
            callbacks=[],
            compile_options=COMPILE,
            verbose=0,
        )
        runs.append(history)
    fit, loop = runs
    assert sorted(loop.history) == sorted(fit.history)
    for key, values in fit.history.items():
        np.testing.assert_allclose(loop.history[key], values, rtol=1e-5, err_msg=key)
    for a, b in zip(fit.model.get_weights(), loop.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_callback_hooks_and_logs(strategy):
    recorder = Recorder()
    training.train(
        build_model,
        training_helpers.translation_dataset(8, batch_size=4),
        validation_data=training_helpers.translation_dataset(4, batch_size=4),
        epochs=2,
        strategy=strategy,
        callbacks=[recorder],
        compile_options=COMPILE,
        verbose=0,
    )
    keys = ["accuracy", "loss", "perplexity"]
    epoch_keys = keys + ["val_" + k for k in keys]
    assert recorder.events == [
        "train_begin",
        "epoch_begin 0",
        "batch 0",
        "batch 1",
        "test_begin",
        f"epoch_end 0 {epoch_keys}",
        "epoch_begin 1",
        "batch 0",
        "batch 1",
        "test_begin",
        f"epoch_end 1 {epoch_keys}",
        "train_end",
    ]
    assert all(sorted(logs) == keys for logs in recorder.batch_logs)
    assert all(isinstance(v, float) for v in recorder.batch_logs[0].values())


def test_steps_per_epoch_beyond_the_data_is_an_error(strategy):
    with pytest.raises(ValueError, match="ran out after 2 of steps_per_epoch=3"):
        training.train(
            build_model,
            training_helpers.translation_dataset(8, batch_size=4),
            steps_per_epoch=3,
            strategy=strategy,
            callbacks=[],
            compile_options=COMPILE,
            verbose=0,
        )


def test_nan_stops_the_loop(strategy):
    inputs, labels, weights = training_helpers.translation_arrays(12)
    weights[4] = np.nan  # batch 1
    data = tf.data.Dataset.from_tensor_slices((inputs, labels, weights)).batch(4)
    guard = training.StopOnNaN()
    history = training.train(
        build_model,
        data,
        epochs=2,
        strategy=strategy,
        callbacks=[guard],
        compile_options=COMPILE,
        verbose=0,
    )
    assert guard.stopped_step == 1
    assert history.epoch == [0]


@pytest.mark.slow
def test_backup_and_checkpoint_in_the_loop(tmp_path, strategy):
    clean = training_helpers.translation_dataset(8, batch_size=4)
    poisoned_inputs, poisoned_labels, poisoned_weights = (
        training_helpers.translation_arrays(4)
    )
    poisoned_weights[:] = np.nan
    poisoned = clean.concatenate(
        tf.data.Dataset.from_tensors(
            (poisoned_inputs, poisoned_labels, poisoned_weights)
        )
    )
    options = dict(
        epochs=3,
        steps_per_epoch=2,
        strategy=strategy,
        output_dir=str(tmp_path),
        compile_options=COMPILE,
        verbose=0,
    )
    with pytest.raises(RuntimeError, match=r"training step 2 \(epoch 1, batch 0\)"):
        training.train(build_model, poisoned, **options)
    assert os.path.exists(os.path.join(tmp_path, "checkpoints", "model.keras"))
    resumed = training.train(build_model, clean.repeat(), **options)
    assert resumed.epoch == [1, 2]
    restored = keras.saving.load_model(
        os.path.join(tmp_path, "checkpoints", "model.keras")
    )
    for a, b in zip(restored.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b)


def test_uncompiled_model_is_refused(strategy):
    with strategy.scope():
        model = build_model()
    with pytest.raises(ValueError, match="compile_model"):
        multi_worker.fit_multi_worker(
            model,
            training_helpers.translation_dataset(4, batch_size=4),
            strategy=strategy,
            metrics=[],
        )
