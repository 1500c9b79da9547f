"""Callbacks for training runs: a NaN guard and a sensible default set."""

import importlib.util
import logging
import math
import os
import time

import keras

from keras_lm.training.backup import ResumableBackup
from keras_lm.training.checkpoint import AtomicModelCheckpoint

logger = logging.getLogger("keras_lm")


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Stops training at the first NaN or infinite loss, naming the step.

    Keras's `TerminateOnNaN` names only the batch within the epoch; this one
    reports the epoch, the batch and the global training step, logs on the
    "keras_lm" logger, and keeps them in `stopped_epoch`, `stopped_batch` and
    `stopped_step`.

    Args:
        raise_error: bool. False: set `model.stop_training` so training ends
            after this batch and the callbacks' end hooks run (keras_lm's
            `ResumableBackup` and `AtomicModelCheckpoint` then keep their last
            finite state; Keras's `BackupAndRestore` would delete its backup).
            True: raise `RuntimeError` at once, leaving the last backup in
            place to resume from.

    Example:
    ```python
    model.fit(data, callbacks=[keras_lm.training.StopOnNaN()])
    ```
    """

    def __init__(self, raise_error=False):
        super().__init__(raise_error=raise_error)
        self.stopped_epoch = None
        self.stopped_batch = None
        self.stopped_step = None
        self._epoch = 0
        self._step = 0

    def on_train_begin(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        # Resumed runs count steps from where the optimizer left off.
        self._step = (
            int(keras.ops.convert_to_numpy(optimizer.iterations))
            if optimizer is not None
            else 0
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        step = self._step
        self._step += 1
        if loss is None or math.isfinite(float(loss)):
            return
        self.stopped_epoch, self.stopped_batch, self.stopped_step = (
            self._epoch,
            batch,
            step,
        )
        message = (
            f"Loss is {float(loss)} at training step {step} (epoch {self._epoch}, "
            f"batch {batch}); stopping training. Lower the learning rate, keep "
            "gradient clipping on, or look for a bad batch in the data."
        )
        if self.raise_error:
            raise RuntimeError(message)
        logger.error(message)
        self.model.stop_training = True


class TimeLimit(keras.callbacks.Callback):
    """Stops training once `minutes` of wall-clock time have passed.

    Checked after every training batch, so a run overshoots by at most one
    batch (plus the end-of-epoch validation and callbacks), and again at the
    end of every epoch, so a limit that passes during validation does not
    start another epoch (which would train one batch and validate again).
    Under multi-worker training with `keras_lm.training.train`, the workers
    stop together as soon as one of them reaches its limit.

    Args:
        minutes: float > 0, training time budget.

    Example:
    ```python
    model.fit(data, epochs=1000, callbacks=[keras_lm.training.TimeLimit(8)])
    ```
    """

    def __init__(self, minutes):
        super().__init__()
        if not minutes or minutes <= 0:
            raise ValueError(f"minutes must be positive. Received: minutes={minutes}")
        self.minutes = minutes
        self.stopped_early = False
        self._deadline = None

    def on_train_begin(self, logs=None):
        self._deadline = time.monotonic() + 60.0 * self.minutes
        self.stopped_early = False

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()

    def _check(self):
        if not self.stopped_early and time.monotonic() >= self._deadline:
            logger.info("Time limit of %s minutes reached; stopping.", self.minutes)
            self.stopped_early = True
        if self.stopped_early:
            self.model.stop_training = True


def default_callbacks(
    output_dir,
    monitor="val_loss",
    save_best_only=True,
    backup_save_freq="epoch",
    tensorboard=True,
    raise_on_nan=True,
    strategy=None,
):
    """Backup, checkpoint, TensorBoard and NaN callbacks writing under `output_dir`.

    Files: `backup/` (`ResumableBackup`: weights, optimizer state and
    position, to resume an interrupted run exactly by running it again;
    deleted when training ends normally, kept after a NaN loss),
    `checkpoints/model.keras` (`AtomicModelCheckpoint`, full model, never
    left half-written, never overwritten by non-finite weights), `logs/`
    (TensorBoard scalars per epoch, no graph, no profiling).

    The NaN guard comes first, so a step with a NaN loss stops training
    before any other callback can save it.

    Under multi-worker training every worker must run the same callbacks but
    only one may write the shared paths: when `strategy` is given and this
    process is not the chief, everything goes under
    `output_dir/workers/<task>/` instead.

    Args:
        output_dir: str, root directory of the run.
        monitor: str, logged quantity ModelCheckpoint compares.
            "val_loss" needs validation data; use "loss" without.
        save_best_only: bool, checkpoint only when `monitor` improves.
        backup_save_freq: "epoch" or an int number of batches (needs
            `steps_per_epoch` and a repeating dataset; see `ResumableBackup`).
        tensorboard: bool, whether to add the TensorBoard callback (skipped,
            with a warning, when the tensorboard package is missing).
        raise_on_nan: bool, `StopOnNaN(raise_error=...)`: raising keeps the
            last good backup to resume from.
        strategy: optional `tf.distribute.Strategy` of the run.

    Returns:
        A list of callbacks for `model.fit` or `keras_lm.training.train`.

    Example:
    ```python
    callbacks = keras_lm.training.default_callbacks("runs/base", monitor="loss")
    model.fit(data, epochs=3, callbacks=callbacks)
    ```
    """
    if not output_dir:
        raise ValueError(
            f"output_dir must be a directory path. Received: output_dir={output_dir!r}"
        )
    root = output_dir
    if strategy is not None:
        from keras_lm import distribute

        root = distribute.output_dir_for(output_dir, strategy)
    callbacks = [
        StopOnNaN(raise_error=raise_on_nan),
        ResumableBackup(
            backup_dir=os.path.join(root, "backup"), save_freq=backup_save_freq
        ),
        AtomicModelCheckpoint(
            filepath=os.path.join(root, "checkpoints", "model.keras"),
            monitor=monitor,
            save_best_only=save_best_only,
        ),
    ]
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        # tf.summary needs the tensorboard package, which TensorFlow 2.21
        # does not install; without it the callback fails at the first batch.
        logger.warning(
            "TensorBoard callback skipped: the tensorboard package is not "
            "installed (pip install tensorboard)."
        )
    elif tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=os.path.join(root, "logs"),
                write_graph=False,
                profile_batch=0,
            )
        )
    return callbacks
