"""Checkpoints that a crash cannot corrupt: write aside, then rename.

Keras writes `.keras` and `.weights.h5` files in place, so a process killed
while saving leaves a truncated file where the last good checkpoint was.
Here every save goes to a temporary file in the same directory, is flushed
to disk, and replaces the target with `os.replace`, which is atomic on POSIX
and Windows: the path holds either the old complete file or the new one.
"""

import logging
import math
import os

import keras
import numpy as np

logger = logging.getLogger("keras_lm")

TEMP_PREFIX = ".tmp-"


def atomic_save(path, write):
    """Calls `write(temp_path)`, then atomically moves the result to `path`.

    The temporary name keeps the file name's ending (Keras checks for
    `.keras` and `.weights.h5`). If `write` raises, or the process dies, the
    file at `path` is untouched; a leftover temporary file starts with
    `.tmp-` and is removed by the next save to the same path.

    Args:
        path: the final file path.
        write: callable taking the temporary path and writing the file there.

    Returns:
        `path`.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    temp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{name}")
    _remove_stale_temps(directory, name)
    try:
        write(temp)
        _fsync(temp)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    _fsync_directory(directory)
    return path


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (see `atomic_save`)."""

    def write(temp):
        with open(temp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_save(path, write)


def finite_weights(model):
    """True when every weight of `model` is finite (no NaN, no inf)."""
    return all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in model.weights)


def finite_logs(logs):
    """True unless a logged quantity (loss, metrics) is NaN or infinite."""
    for value in (logs or {}).values():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            return False
    return True


def _remove_stale_temps(directory, name):
    # Only temps of processes that are gone: a live one may be mid-save.
    suffix = f"-{name}"
    for entry in os.listdir(directory):
        if not (entry.startswith(TEMP_PREFIX) and entry.endswith(suffix)):
            continue
        pid = entry[len(TEMP_PREFIX) : -len(suffix)]
        if pid.isdigit() and not _process_alive(int(pid)):
            os.remove(os.path.join(directory, entry))


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_directory(directory):
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` that never leaves a corrupt file.

    Same arguments and behaviour as Keras's callback, with two changes:
    each save is written aside and renamed over the target (`atomic_save`),
    so a crash during a save keeps the previous checkpoint loadable; and a
    save is skipped, with a warning, when the logged loss or metrics or the
    model's weights are NaN or infinite, so a diverged step cannot replace
    the last good checkpoint.

    Args:
        filepath: as in `keras.callbacks.ModelCheckpoint` (`.keras`, or
            `.weights.h5` with `save_weights_only=True`).
        **kwargs: `monitor`, `save_best_only`, `save_freq`, ... as in
            `keras.callbacks.ModelCheckpoint`.

    Example:
    ```python
    checkpoint = keras_lm.training.AtomicModelCheckpoint(
        "runs/base/checkpoints/model.keras", monitor="val_loss",
        save_best_only=True)
    model.fit(data, validation_data=val, callbacks=[checkpoint])
    ```
    """

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not finite_logs(logs) or not finite_weights(self.model):
            logger.warning(
                "Checkpoint not written to '%s': the loss, a metric or a weight "
                "is NaN or infinite (epoch %d). The previous checkpoint is kept.",
                filepath,
                epoch,
            )
            return
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        if self.save_weights_only:
            atomic_save(
                filepath, lambda temp: self.model.save_weights(temp, overwrite=True)
            )
        else:
            atomic_save(filepath, lambda temp: self.model.save(temp, overwrite=True))
