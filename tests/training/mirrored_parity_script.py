"""Trains the same model on one device and under MirroredStrategy over two
logical CPUs, from the same weights on the same global batches, and writes the
per-step losses and final weights of both to the .npz path in argv[1].

argv[2] is how it trains: "train" (keras_lm.training.train, the default) or
"fit" (compile_model and model.fit in the strategy's scope). argv[3] is the
model: "seq2seq" (the default) or "lm".

Run in its own process: logical devices must be configured before TensorFlow
initializes its devices.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import training_helpers  # noqa: E402

from keras_lm import training  # noqa: E402

STEPS = 3
MODELS = {
    "seq2seq": (
        training_helpers.tiny_transformer,
        training_helpers.translation_dataset,
    ),
    "lm": (training_helpers.tiny_transformer_lm, training_helpers.lm_dataset),
}


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def run(strategy, initial_weights, build_model_fn, make_data, mode):
    def build_model():
        model = build_model_fn()
        model.set_weights(initial_weights)
        return model

    # Rows 0-1 (replica 0) and 2-3 (replica 1) have different real-token counts.
    data = make_data(4 * STEPS, batch_size=4)
    recorder = StepLosses()
    if mode == "fit":
        with strategy.scope():
            model = build_model()
            training.compile_model(model, **training_helpers.PARITY_COMPILE)
        model.fit(data, callbacks=[recorder], shuffle=False, verbose=0)
    else:
        model = training.train(
            build_model,
            data,
            epochs=1,
            strategy=strategy,
            callbacks=[recorder],
            compile_options=training_helpers.PARITY_COMPILE,
            verbose=0,
        ).model
    return np.array(recorder.losses), model.get_weights()


def main(path, mode="train", model="seq2seq"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    build_model_fn, make_data = MODELS[model]
    keras.utils.set_random_seed(0)
    initial_weights = build_model_fn().get_weights()
    single_losses, single_weights = run(
        tf.distribute.OneDeviceStrategy("/cpu:0"),
        initial_weights,
        build_model_fn,
        make_data,
        mode,
    )
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored_losses, mirrored_weights = run(
        mirrored, initial_weights, build_model_fn, make_data, mode
    )
    np.savez(
        path,
        replicas=mirrored.num_replicas_in_sync,
        single_losses=single_losses,
        mirrored_losses=mirrored_losses,
        **{f"single_weight_{i}": w for i, w in enumerate(single_weights)},
        **{f"mirrored_weight_{i}": w for i, w in enumerate(mirrored_weights)},
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
