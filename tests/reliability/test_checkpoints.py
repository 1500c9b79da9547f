"""Checkpoints and backups survive a crash during a save and a NaN loss."""

import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lm import training
from tests.training import training_helpers

COMPILE = {"learning_rate": 1e-2, "jit_compile": False}


def compiled_model():
    keras.utils.set_random_seed(0)
    model = training_helpers.tiny_seq2seq()
    training.compile_model(model, **COMPILE)
    return model


def data(num_batches=2):
    return training_helpers.translation_dataset(4 * num_batches, batch_size=4)


def torn_write(real_save):
    """A save that writes half a file at its path, then dies (disk full, kill)."""

    def save(self, filepath, *args, **kwargs):
        real_save(self, filepath, *args, **kwargs)
        with open(filepath, "rb") as f:
            content = f.read()
        with open(filepath, "wb") as f:
            f.write(content[: len(content) // 2])
        raise OSError(f"simulated crash while writing {filepath}")

    return save


@pytest.mark.parametrize("atomic", [True, False], ids=["keras_lm", "keras"])
def test_crash_during_a_save_keeps_the_previous_checkpoint(
    tmp_path, monkeypatch, atomic
):
    path = str(tmp_path / "model.keras")
    callback_class = (
        training.AtomicModelCheckpoint if atomic else keras.callbacks.ModelCheckpoint
    )
    checkpoint = callback_class(path, monitor="loss", save_best_only=False)
    model = compiled_model()
    model.fit(data(), epochs=1, callbacks=[checkpoint], verbose=0)
    saved_weights = model.get_weights()

    monkeypatch.setattr(keras.Model, "save", torn_write(keras.Model.save))
    with pytest.raises(OSError, match="simulated crash"):
        model.fit(data(), epochs=1, callbacks=[checkpoint], verbose=0)
    monkeypatch.undo()

    if not atomic:
        # Keras writes in place: the crash destroyed the only checkpoint.
        with pytest.raises(Exception):  # noqa: B017  any load error will do
            keras.saving.load_model(path)
        return
    restored = keras.saving.load_model(path)
    for a, b in zip(restored.get_weights(), saved_weights):
        np.testing.assert_array_equal(a, b)
    assert os.listdir(tmp_path) == ["model.keras"], "no temporary file left"


def test_crash_during_a_backup_resumes_from_the_previous_one(tmp_path, monkeypatch):
    backup_dir = str(tmp_path / "backup")
    weights_after, weights_at_begin = [], []

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            weights_at_begin.append(self.model.get_weights())

        def on_train_batch_end(self, batch, logs=None):
            weights_after.append(self.model.get_weights())

    real_save_weights = keras.Model.save_weights
    calls = []

    def save_weights(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) == 3:  # the third backup dies half-written
            return torn_write(real_save_weights)(self, filepath, *args, **kwargs)
        return real_save_weights(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    backup = training.ResumableBackup(backup_dir, save_freq=1)
    stream = data(num_batches=4).repeat()
    with pytest.raises(OSError, match="simulated crash"):
        compiled_model().fit(
            backup.skip_consumed(stream, 4),
            epochs=1,
            steps_per_epoch=4,
            callbacks=[backup, Record()],
            verbose=0,
        )
    monkeypatch.undo()

    with open(os.path.join(backup_dir, "state.json")) as f:
        state = json.load(f)
    assert (state["epoch"], state["batch"], state["consumed_batches"]) == (0, 2, 2)
    resumed = compiled_model()
    backup = training.ResumableBackup(backup_dir, save_freq=1)
    resumed.fit(
        backup.skip_consumed(stream, 4),
        epochs=1,
        steps_per_epoch=4,
        callbacks=[backup, Record()],
        verbose=0,
    )
    assert backup.resumed_from["consumed_batches"] == 2
    # It started from the weights after step 2 and ran steps 3 and 4 only.
    for a, b in zip(weights_at_begin[1], weights_after[1]):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.optimizer.iterations) == 4
    assert len(weights_after) == 2 + 2


def test_resume_without_positioned_data_is_refused(tmp_path):
    backup_dir = str(tmp_path / "backup")
    stream = data(num_batches=4).repeat()

    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backup = training.ResumableBackup(backup_dir, save_freq=1)
        compiled_model().fit(
            backup.skip_consumed(stream, 4),
            epochs=1,
            steps_per_epoch=4,
            callbacks=[backup, Crash()],
            verbose=0,
        )
    with pytest.raises(ValueError, match="skip_consumed"):
        compiled_model().fit(
            stream,
            epochs=1,
            steps_per_epoch=4,
            callbacks=[training.ResumableBackup(backup_dir, save_freq=1)],
            verbose=0,
        )
    with pytest.raises(ValueError, match="steps_per_epoch=..."):
        training.ResumableBackup(backup_dir, save_freq=1).skip_consumed(stream, None)
    with pytest.raises(ValueError, match="save_freq=0"):
        training.ResumableBackup(backup_dir, save_freq=0)


def poisoned_stream(bad_step, num_batches=6):
    """Batches whose sample weights are NaN in global step `bad_step` (1-based)."""
    inputs, labels, weights = training_helpers.translation_arrays(4 * num_batches)
    weights[4 * (bad_step - 1)] = np.nan
    return tf.data.Dataset.from_tensor_slices((inputs, labels, weights)).batch(4)


@pytest.mark.parametrize("raise_on_nan", [False, True])
def test_nan_loss_stops_names_the_step_and_keeps_the_last_good_state(
    tmp_path, caplog, raise_on_nan
):
    callbacks = training.default_callbacks(
        str(tmp_path),
        monitor="loss",
        save_best_only=False,
        backup_save_freq=1,
        tensorboard=False,
        raise_on_nan=raise_on_nan,
    )
    good = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            good.append(self.model.get_weights())

    options = dict(
        epochs=3,
        steps_per_epoch=2,
        callbacks=callbacks + [Record()],
        compile_options=COMPILE,
        verbose=0,
    )
    # The 4th batch is step 3, epoch 1, batch 1 (all counted from 0), after
    # one good epoch.
    message = r"Loss is nan at training step 3 \(epoch 1, batch 1\)"
    with caplog.at_level(logging.ERROR, logger="keras_lm"):
        if raise_on_nan:
            with pytest.raises(RuntimeError, match=message):
                training.train(compiled_model_builder, poisoned_stream(4), **options)
        else:
            history = training.train(
                compiled_model_builder, poisoned_stream(4), **options
            )
            assert history.epoch == [0, 1]
            assert not all(np.isfinite(w).all() for w in history.model.get_weights()), (
                "the NaN step should have reached the weights"
            )
    if not raise_on_nan:
        assert "training step 3 (epoch 1, batch 1)" in caplog.text

    checkpoint = keras.saving.load_model(tmp_path / "checkpoints" / "model.keras")
    for a, b in zip(checkpoint.get_weights(), good[0]):
        np.testing.assert_array_equal(a, b)
    with open(tmp_path / "backup" / "state.json") as f:
        state = json.load(f)
    # Steps 1, 2 (end of epoch 0) and 3 were good; step 4 was never backed up.
    assert (state["epoch"], state["batch"], state["consumed_batches"]) == (1, 1, 3)


def compiled_model_builder():
    keras.utils.set_random_seed(0)
    return training_helpers.tiny_seq2seq()
