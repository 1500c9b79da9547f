"""`ResumableBackup`: resume an interrupted run exactly where it stopped.

Keras's `BackupAndRestore` writes its weights file in place (a kill during
the write corrupts it), stores the epoch in a second file written after the
weights (a kill between the two mixes states), and on resume replays the
whole interrupted epoch, so a run backed up every N batches trains on some
batches twice and ends with other weights than an uninterrupted run.
"""

import glob
import json
import logging
import os

import keras

from keras_lm.training.checkpoint import atomic_save, atomic_write_text, finite_logs

logger = logging.getLogger("keras_lm")

FORMAT = "keras_lm.backup/1"
STATE_FILE = "state.json"


class _EndOfResumedEpoch:
    """Truthy `model.stop_training` value that ends only the resumed epoch.

    fit breaks its batch loop on any truthy value; `ResumableBackup` puts
    this one back to False at the end of the epoch. A callback that wants
    training to stop sets True, which replaces it and is left alone.
    """

    def __bool__(self):
        return True

    def __repr__(self):
        return "END_OF_RESUMED_EPOCH"


END_OF_RESUMED_EPOCH = _EndOfResumedEpoch()


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Backs up the training state atomically and resumes mid-epoch exactly.

    Every backup holds the weights, the optimizer state (its step count, so
    also the learning-rate schedule's position, and its moments) and the
    position in training: epoch, batches done in that epoch, and batches
    taken from the training data since the run began. A run killed at any
    moment, even during a save, and started again with the same arguments
    resumes from its last backup and ends with the weights an uninterrupted
    run would have (with the same seed and data order).

    How the data position is restored: with `steps_per_epoch`, fit keeps one
    iterator over a repeating dataset for all epochs, so the run is a single
    stream of batches. `skip_consumed(dataset, steps_per_epoch)` drops the
    batches the backed-up run already took (`keras_lm.training.train` calls
    it), and the first resumed epoch runs only the batches that epoch still
    had to do. The dataset must give the same batches in the same order on
    every run: a fixed shuffle seed, no randomness outside it. With
    `save_freq="epoch"` and no `steps_per_epoch`, each epoch is one backup
    unit and the data is not skipped, as with Keras's callback.

    Files under `backup_dir`: `state.json` (written last, atomically) names
    the weights file `step-<batches>.weights.h5` it belongs to; older weights
    files are removed after each save. Training that ends normally deletes
    the directory; training stopped by a NaN or infinite loss keeps it, and
    such a step is never backed up.

    Args:
        backup_dir: directory for this run's backups only.
        save_freq: "epoch", or back up every `save_freq` batches (needs
            `steps_per_epoch` and a repeating dataset).
        delete_checkpoint: delete the backup when training ends normally.

    Example:
    ```python
    backup = keras_lm.training.ResumableBackup("runs/base/backup", save_freq=100)
    data = backup.skip_consumed(data.repeat(), steps_per_epoch=1000)
    model.fit(data, epochs=10, steps_per_epoch=1000, callbacks=[backup])
    ```
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        if isinstance(save_freq, bool) or (
            save_freq != "epoch" and (not isinstance(save_freq, int) or save_freq < 1)
        ):
            raise ValueError(
                "save_freq must be 'epoch' or a positive number of batches. "
                f"Received: save_freq={save_freq!r}"
            )
        super().__init__(
            backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint
        )
        self.state_path = os.path.join(backup_dir, STATE_FILE)
        self.resumed_from = None
        self._data_positioned = False
        self._reset_counters()

    def _reset_counters(self):
        self._epoch = 0
        self._batch_offset = 0  # batches of the resumed epoch done before
        self._batches_in_epoch = 0
        self._consumed = 0
        self._consumed_at_epoch_begin = 0
        self._last_saved = 0
        self._nonfinite = False

    def read_state(self):
        """The saved position `{"epoch", "batch", "consumed_batches", ...}`, or None."""
        if not os.path.exists(self.state_path):
            return None
        try:
            with open(self.state_path, encoding="utf-8") as f:
                state = json.load(f)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"The backup state '{self.state_path}' cannot be read ({error}). "
                f"Delete the directory '{self.backup_dir}' to start the run over."
            ) from error
        if state.get("format") != FORMAT:
            raise ValueError(
                f"'{self.backup_dir}' holds a backup of another format "
                f"({state.get('format')!r}, expected {FORMAT!r}). Delete it to "
                "start the run over, or use another backup_dir."
            )
        return state

    def skip_consumed(self, dataset, steps_per_epoch):
        """Returns `dataset` without the batches the backed-up run already took.

        Args:
            dataset: the training `tf.data.Dataset`, as passed to fit.
            steps_per_epoch: the `steps_per_epoch` passed to fit, or None.
        """
        state = self.read_state()
        self._data_positioned = True
        if state is None:
            return dataset
        if steps_per_epoch is None:
            if state["batch"]:
                raise ValueError(
                    f"The backup in '{self.backup_dir}' stopped in the middle of "
                    f"epoch {state['epoch']} (after batch {state['batch']}), and "
                    "without steps_per_epoch the data cannot be positioned there. "
                    "Pass steps_per_epoch=... with a repeating dataset, as in the "
                    "interrupted run, or back up with save_freq='epoch'."
                )
            return dataset
        return dataset.skip(state["consumed_batches"])

    def on_train_begin(self, logs=None):
        self._reset_counters()
        steps = self.params.get("steps")
        if self.save_freq != "epoch" and not steps:
            raise ValueError(
                f"ResumableBackup(save_freq={self.save_freq}) backs up in the "
                "middle of epochs, which needs a known number of steps per "
                "epoch. Pass steps_per_epoch=... to fit and repeat the dataset, "
                "or use save_freq='epoch'."
            )
        state = self.read_state()
        self.resumed_from = state
        if state is None:
            return
        if state["consumed_batches"] and not self._data_positioned:
            raise ValueError(
                f"Resuming from '{self.backup_dir}' needs the training data "
                "positioned after the batches already used: pass the dataset "
                "through ResumableBackup.skip_consumed(dataset, steps_per_epoch) "
                "before fit (keras_lm.training.train does this)."
            )
        self._restore_weights(state)
        self.model._initial_epoch = state["epoch"]
        self._epoch = state["epoch"]
        self._consumed = self._last_saved = state["consumed_batches"]
        self._batch_offset = state["batch"]
        logger.info(
            "Resuming from '%s': epoch %d, batch %d, %d batches trained.",
            self.backup_dir,
            state["epoch"],
            state["batch"],
            state["consumed_batches"],
        )

    def _restore_weights(self, state):
        path = os.path.join(self.backup_dir, state["weights"])
        if not os.path.exists(path):
            raise ValueError(
                f"The backup state '{self.state_path}' names '{path}', which is "
                f"missing. Delete '{self.backup_dir}' to start the run over."
            )
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(path)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self._epoch:
            self._batch_offset = 0
        self._epoch = epoch
        self._consumed_at_epoch_begin = self._consumed
        self._batches_in_epoch = self._batch_offset

    def on_train_batch_end(self, batch, logs=None):
        self._batches_in_epoch = self._batch_offset + batch + 1
        self._consumed = self._consumed_at_epoch_begin + batch + 1
        if not finite_logs(logs):
            self._nonfinite = True
            return
        if self._nonfinite:
            return
        steps = self.params.get("steps")
        if self._batch_offset and steps and self._batches_in_epoch >= steps:
            if not self.model.stop_training:
                self.model.stop_training = END_OF_RESUMED_EPOCH
        # An epoch's last batch is backed up by on_epoch_end, after the
        # validation and checkpoint of that epoch.
        if (
            self.save_freq != "epoch"
            and self._consumed - self._last_saved >= self.save_freq
            and not (steps and self._batches_in_epoch >= steps)
        ):
            self._save(self._epoch, self._batches_in_epoch)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training is END_OF_RESUMED_EPOCH:
            self.model.stop_training = False
        self._batch_offset = 0
        self._epoch = epoch + 1
        if self._nonfinite or not finite_logs(logs):
            self._nonfinite = True
            return
        steps = self.params.get("steps")
        if self.save_freq != "epoch" and steps and self._batches_in_epoch < steps:
            # Stopped early (time limit, ...): keep the exact position.
            self._save(epoch, self._batches_in_epoch)
        else:
            self._save(epoch + 1, 0)

    def on_train_end(self, logs=None):
        if self._nonfinite:
            logger.warning(
                "Training stopped on a NaN or infinite loss; the last good backup "
                "is kept in '%s'.",
                self.backup_dir,
            )
            return
        super().on_train_end(logs)

    def _save(self, epoch, batch):
        name = f"step-{self._consumed}.weights.h5"
        atomic_save(
            os.path.join(self.backup_dir, name),
            lambda temp: self.model.save_weights(temp, overwrite=True),
        )
        state = {
            "format": FORMAT,
            "epoch": epoch,
            "batch": batch,
            "consumed_batches": self._consumed,
            "weights": name,
        }
        atomic_write_text(self.state_path, json.dumps(state))
        self._last_saved = self._consumed
        for old in glob.glob(os.path.join(self.backup_dir, "step-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)
