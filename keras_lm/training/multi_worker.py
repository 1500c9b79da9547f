"""A Keras-callback-driven training loop for `MultiWorkerMirroredStrategy`.

`model.fit` fails under `MultiWorkerMirroredStrategy` with TensorFlow 2.21 and
Keras 3.15 ("Attempt to convert a value (PerReplica...) to a Tensor",
keras-team/keras#20585). This loop does what fit does with the pieces that do
work there: `experimental_distribute_dataset`, `strategy.run` over a
`GradientTape` step with the compiled model's loss and Keras optimizer, and
the same metric objects, driven by a `keras.callbacks.CallbackList`.

Supported: epochs, `steps_per_epoch` (one iterator kept across epochs, as fit
does) or one pass over the data per epoch, validation data and
`validation_steps`, `initial_epoch`, train/test/epoch callback hooks with a
logs dict (loss and metrics, globally reduced, identical on every worker),
`model.stop_training` (any worker stopping stops all of them after the same
batch), ProgbarLogger on the chief, History, BackupAndRestore (at epoch
granularity, as in fit) and keras_lm's ResumableBackup (also mid-epoch),
ModelCheckpoint, TensorBoard, TerminateOnNaN, mixed precision (loss scaling
via `optimizer.scale_loss`). With `keras_lm.training.default_callbacks(...,
strategy=strategy)` only the chief writes the shared paths; other workers
write under `workers/<task>/`.

Not supported: `steps_per_execution` > 1 and XLA (each step is a plain
`tf.function`: collectives inside XLA clusters are not available on every
device type), `class_weight`, `validation_split`, `validation_freq`, numpy or
generator inputs (pass a `tf.data.Dataset`), and clipping of the summed
gradient (Keras clips each replica's share, as in fit).
"""

import keras
import tensorflow as tf
from keras import ops

from keras_lm import distribute
from keras_lm.training.backup import END_OF_RESUMED_EPOCH


def fit_multi_worker(
    model,
    train_data,
    strategy,
    metrics,
    epochs=1,
    steps_per_epoch=None,
    validation_data=None,
    validation_steps=None,
    callbacks=None,
    initial_epoch=0,
    verbose=1,
):
    """Trains `model` under `strategy` with callbacks; returns a `History`.

    Args:
        model: a built model compiled inside `strategy.scope()` (loss and
            optimizer are taken from it).
        train_data: `tf.data.Dataset` of global batches `(x, y, sample_weight)`.
        strategy: the `tf.distribute.Strategy`; every worker runs this call.
        metrics: the metric objects given to `model.compile`, created in the
            scope. They are updated exactly as `model.fit` updates them.
        epochs, steps_per_epoch, validation_data, validation_steps,
        callbacks, initial_epoch, verbose: as in `model.fit`.

    Returns:
        The `keras.callbacks.History` of the run; `history.model` is `model`.

    Example:
    ```python
    with strategy.scope():
        model = build_model()
        metrics = keras_lm.training.default_metrics(model=model)
        keras_lm.training.compile_model(model, learning_rate=1e-3,
                                        metrics=metrics)
    fit_multi_worker(model, data, strategy, metrics, epochs=2)
    ```
    """
    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    if not model.built or optimizer is None or loss is None:
        raise ValueError(
            "fit_multi_worker needs a built model compiled with a loss and an "
            f"optimizer inside strategy.scope(). Received: built={model.built}, "
            f"optimizer={optimizer}, loss={loss}. Call "
            "keras_lm.training.compile_model(model, ...) in the scope first."
        )
    with strategy.scope():
        loss_tracker = keras.metrics.Mean(name="loss")
        # Slot variables must be created in cross-replica context; the first
        # `apply` inside `strategy.run` would otherwise create them per replica.
        model.optimizer.build(model.trainable_variables)
    trackers = [loss_tracker] + list(metrics)
    train_step = _step_function(model, strategy, loss_tracker, metrics, True)
    test_step = _step_function(model, strategy, loss_tracker, metrics, False)
    chief = distribute.is_chief(strategy)
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=bool(verbose) and chief,
        model=model,
        verbose=verbose if chief else 0,
        epochs=epochs,
        steps=steps_per_epoch,
    )
    train_dist = strategy.experimental_distribute_dataset(train_data)
    val_dist = (
        strategy.experimental_distribute_dataset(validation_data)
        if validation_data is not None
        else None
    )

    model.stop_training = False
    callback_list.on_train_begin()
    # BackupAndRestore communicates the epoch to resume from this way in fit.
    initial_epoch = model._initial_epoch or initial_epoch
    shared_iterator = iter(train_dist) if steps_per_epoch else None
    logs = {}
    for epoch in range(initial_epoch, epochs):
        _reset(trackers)
        callback_list.on_epoch_begin(epoch)
        iterator = shared_iterator or iter(train_dist)
        for step, batch in _batches(iterator, steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            train_step(batch)
            logs = _read(trackers)
            callback_list.on_train_batch_end(step, logs)
            requested = model.stop_training
            model.stop_training = _any_worker(strategy, requested)
            if model.stop_training and requested is END_OF_RESUMED_EPOCH:
                # Every worker resumed from the same step: the epoch ends
                # here on all of them, and training goes on.
                model.stop_training = requested
            if model.stop_training:
                break
        epoch_logs = dict(logs)
        if val_dist is not None:
            val_logs = _evaluate(
                val_dist, validation_steps, test_step, trackers, callback_list
            )
            epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callback_list.on_epoch_end(epoch, epoch_logs)
        logs = epoch_logs
        # Epoch-end callbacks (a time limit read during validation) may stop
        # one worker only; all of them must agree before the next epoch.
        model.stop_training = _any_worker(strategy, bool(model.stop_training))
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return next(
        c for c in callback_list.callbacks if isinstance(c, keras.callbacks.History)
    )


def _batches(iterator, steps):
    """(step, batch) pairs: `steps` of them, or until the data ends.

    The distributed iterator agrees with the other workers on where the data
    ends, so every worker runs the same number of steps.
    """
    step = 0
    while steps is None or step < steps:
        try:
            batch = next(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
            if steps is not None:
                raise ValueError(
                    f"The training data ran out after {step} of "
                    f"steps_per_epoch={steps} steps. Repeat the dataset "
                    "(dataset.repeat()) or pass steps_per_epoch=None."
                ) from None
            return
        yield step, batch
        step += 1


def _evaluate(val_dist, steps, test_step, trackers, callback_list):
    _reset(trackers)
    callback_list.on_test_begin()
    logs = {}
    for step, batch in _batches(iter(val_dist), steps):
        callback_list.on_test_batch_begin(step)
        test_step(batch)
        logs = _read(trackers)
        callback_list.on_test_batch_end(step, logs)
    callback_list.on_test_end(logs)
    return logs


def _step_function(model, strategy, loss_tracker, metrics, training):
    """One distributed train or test step as a `tf.function` of a batch."""

    def replica_step(batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        with tf.GradientTape(watch_accessed_variables=training) as tape:
            y_pred = model(x, training=training)
            # The compiled keras_lm loss divides by the global batch's
            # real-token count, so summing replicas' gradients is exact.
            loss = model.loss(y, y_pred, sample_weight)
            if model.losses:
                # Every replica adds the same regularization term; the
                # gradient sum over replicas must count it once.
                loss += ops.sum(model.losses) / strategy.num_replicas_in_sync
            # Loss scaling (mixed_float16) must happen under the tape.
            scaled_loss = model.optimizer.scale_loss(loss)
        if training:
            gradients = tape.gradient(scaled_loss, model.trainable_variables)
            model.optimizer.apply(gradients, model.trainable_variables)
        batch_size = tf.shape(keras.tree.flatten(x)[0])[0]
        # Mirrors model.fit: the tracked value is the global loss once the
        # per-replica values are averaged over replicas by batch size.
        loss_tracker.update_state(
            loss * strategy.num_replicas_in_sync, sample_weight=batch_size
        )
        for metric in metrics:
            metric.update_state(y, y_pred, sample_weight=sample_weight)

    @tf.function(reduce_retracing=True)
    def step(batch):
        strategy.run(replica_step, args=(batch,))

    return step


def _any_worker(strategy, stop):
    """True on every worker when `stop` is True on any of them.

    A callback may stop one worker only (a time limit reads its own clock); a
    worker that went on alone would wait forever in the next all-reduce.
    """
    votes = strategy.run(lambda: tf.constant(1.0 if stop else 0.0))
    return bool(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None) > 0)


def _reset(trackers):
    for tracker in trackers:
        tracker.reset_state()


def _read(trackers):
    """Python floats; reading metric variables sums them over all workers."""
    return {tracker.name: float(tracker.result()) for tracker in trackers}
