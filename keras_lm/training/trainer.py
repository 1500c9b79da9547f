"""`train`: build, compile and fit a model under a distribution strategy."""

import logging

import keras

from keras_lm.training import backup as backup_lib
from keras_lm.training import callbacks as callbacks_lib
from keras_lm.training import compile as compile_lib
from keras_lm.training import data_checks

logger = logging.getLogger("keras_lm")


def train(
    build_model,
    train_data,
    validation_data=None,
    epochs=1,
    steps_per_epoch=None,
    validation_steps=None,
    strategy=None,
    callbacks=None,
    output_dir=None,
    compile_options=None,
    initial_epoch=0,
    global_batch_size=None,
    sequence_length=None,
    verbose="auto",
):
    """Builds and compiles a model in the strategy's scope, then trains it.

    The model, optimizer and metrics are created inside `strategy.scope()`.
    Data is shaped for the strategy (static shapes on TPU, see
    `keras_lm.distribute.prepare_dataset`). Training runs `model.fit`, except
    under `MultiWorkerMirroredStrategy`, where fit fails with TensorFlow 2.21
    and Keras 3.15 (keras-team/keras#20585) and keras_lm's own loop
    (`keras_lm.training.multi_worker.fit_multi_worker`) runs the same loss,
    optimizer, metrics and callbacks instead.

    Args:
        build_model: zero-argument callable returning an uncompiled, built
            Keras model (e.g. `lambda: TransformerSeq2Seq(**config)`).
        train_data: `tf.data.Dataset` of global batches
            `(inputs, labels, sample_weight)`. Its structure is checked, and
            its first batch is read once to check that ids and labels fit
            the model's vocabulary and that labels line up with the inputs.
        validation_data: optional dataset like `train_data`.
        epochs: int, number of epochs.
        steps_per_epoch: optional int; the dataset must then repeat.
        validation_steps: optional int, batches per validation pass.
        strategy: optional `tf.distribute.Strategy`; None for
            `keras_lm.distribute.get_strategy("auto")`.
        callbacks: list of callbacks; None for `default_callbacks(output_dir)`
            when `output_dir` is given, else just `StopOnNaN()`.
        output_dir: optional run directory for the default callbacks.
        compile_options: dict of keyword arguments for
            `keras_lm.training.compile_model` (learning_rate,
            label_smoothing, ...).
        initial_epoch: int, epoch to start from.
        global_batch_size: int, for static shapes on TPU when the dataset's
            batch size is not static.
        sequence_length: int, for static shapes on TPU when lengths vary.
        verbose: "auto", 0, 1 or 2, as in `model.fit`.

    Returns:
        A `keras.callbacks.History`; the trained model is `history.model`.

    Example:
    ```python
    history = keras_lm.training.train(
        lambda: keras_lm.models.TransformerSeq2Seq(**config),
        train_data,
        validation_data=val_data,
        epochs=10,
        output_dir="runs/base",
        compile_options={"label_smoothing": 0.1},
    )
    model = history.model
    ```
    """
    from keras_lm import distribute

    if isinstance(build_model, keras.Model) or not callable(build_model):
        raise ValueError(
            "build_model must be a zero-argument callable that returns a model, "
            f"e.g. `lambda: Model(...)`. Received: build_model={build_model!r}"
        )
    data_checks.check_dataset("train_data", train_data)
    if validation_data is not None:
        data_checks.check_dataset("validation_data", validation_data)
    strategy = strategy or distribute.get_strategy("auto")
    compile_options = dict(compile_options or {})
    if compile_options.get("jit_compile", True) and not distribute.supports_xla(
        strategy
    ):
        logger.info(
            "XLA off: %d replicas on CPU devices cannot share XLA-compiled steps.",
            strategy.num_replicas_in_sync,
        )
        compile_options["jit_compile"] = False
    with strategy.scope():
        model = build_model()
        if not isinstance(model, keras.Model):
            raise ValueError(
                "build_model must return a keras.Model. "
                f"Received: {type(model).__name__}"
            )
        metrics = compile_options.pop("metrics", None)
        if metrics is None:
            metrics = compile_lib.default_metrics(
                compile_options.get("ignore_id", compile_lib.MODEL_PAD_ID), model
            )
        compile_lib.compile_model(model, metrics=metrics, **compile_options)
    if callbacks is None:
        if output_dir:
            monitor = "val_loss" if validation_data is not None else "loss"
            callbacks = callbacks_lib.default_callbacks(
                output_dir, monitor=monitor, strategy=strategy
            )
        else:
            callbacks = [callbacks_lib.StopOnNaN()]
    data_checks.check_first_batch("train_data", train_data, model)
    for callback in callbacks:
        if isinstance(callback, backup_lib.ResumableBackup):
            # Resuming mid-run: drop the batches the backed-up run used.
            train_data = callback.skip_consumed(train_data, steps_per_epoch)
    train_data, validation_data = (
        None
        if data is None
        else distribute.prepare_dataset(
            data,
            strategy,
            global_batch_size=global_batch_size,
            sequence_length=sequence_length,
        )
        for data in (train_data, validation_data)
    )
    if distribute.is_multi_worker(strategy):
        from keras_lm.training import multi_worker

        logger.info("MultiWorkerMirroredStrategy: using keras_lm's training loop.")
        return multi_worker.fit_multi_worker(
            model,
            train_data,
            strategy=strategy,
            metrics=metrics,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation_data,
            validation_steps=validation_steps,
            callbacks=callbacks,
            initial_epoch=initial_epoch,
            verbose=1 if verbose == "auto" else verbose,
        )
    return model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_steps=validation_steps,
        callbacks=callbacks,
        initial_epoch=initial_epoch,
        # Datasets arrive shuffled by the data pipeline; fit cannot reshuffle
        # them and would only warn.
        shuffle=False,
        verbose=verbose,
    )
