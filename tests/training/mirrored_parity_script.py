"""Trains the same model on one device and under MirroredStrategy over two
logical CPUs, from the same weights on the same global batches, and writes the
per-step losses and final weights of both to the .npz path in argv[1].

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


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def run(strategy, initial_weights, build_model_fn):
    def build_model():
        model = build_model_fn()
        model.set_weights(initial_weights)
        return model

    # Rows 0-1 (replica 0) and 2-3 (replica 1) have different real-token counts.
    data = training_helpers.translation_dataset(4 * STEPS, batch_size=4)
    recorder = StepLosses()
    history = training.train(
        build_model,
        data,
        epochs=1,
        strategy=strategy,
        callbacks=[recorder],
        compile_options=training_helpers.PARITY_COMPILE,
        verbose=0,
    )
    return np.array(recorder.losses), history.model.get_weights()


def main(path):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    build_model_fn = training_helpers.tiny_transformer
    keras.utils.set_random_seed(0)
    initial_weights = build_model_fn().get_weights()
    single_losses, single_weights = run(
        tf.distribute.OneDeviceStrategy("/cpu:0"), initial_weights, build_model_fn
    )
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored_losses, mirrored_weights = run(mirrored, initial_weights, build_model_fn)
    np.savez(
        path,
        replicas=mirrored.num_replicas_in_sync,
        single_losses=single_losses,
        mirrored_losses=mirrored_losses,
        **{f"single_weight_{i}": w for i, w in enumerate(single_weights)},
        **{f"mirrored_weight_{i}": w for i, w in enumerate(mirrored_weights)},
    )


if __name__ == "__main__":
    main(sys.argv[1])
