"""A tiny language-model run that the resume test kills and starts again.

Usage: resume_script.py RUN_DIR [--snapshots] [--step-delay SECONDS]

Trains a TransformerLM (vocabulary 40, width 16, one layer) through
`keras_lm.training.train` with the default callbacks backing up after every
batch. The data is one fixed, seeded, repeating stream, so a run and its
resumption see the same batches in the same order.

Writes into RUN_DIR:
- `progress.log`: one line per trained batch (the test kills on it);
- `begin.npz`: after the backup is restored, the optimizer step, learning
  rate, weights and optimizer variables the run starts from;
- `steps/<n>.npz` with --snapshots: the same after every batch n;
- `final.npz`: the same at the end.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lm import models, training  # noqa: E402

VOCAB = 40
EPOCHS = 3
STEPS_PER_EPOCH = 4
BATCH = 4
COMPILE = {
    # learning_rate=None: the paper's warmup schedule, so the learning rate
    # changes at every step and a wrong step count shows.
    "warmup_steps": 5,
    "label_smoothing": 0.1,
    "jit_compile": False,
}


def build_model():
    keras.utils.set_random_seed(0)
    # A decoder-only model: half the variables of an encoder-decoder, so
    # half the tracing time of the optimizer step in each of the processes.
    return models.TransformerLM(
        vocabulary_size=VOCAB,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=8,
        dropout=0.0,
    )


def dataset():
    rng = np.random.default_rng(0)
    n = 32
    ids = rng.integers(4, VOCAB, (n, 8)).astype("int32")
    for row in range(n):
        ids[row, rng.integers(3, 9) :] = 0
    inputs, labels = ids[:, :-1], ids[:, 1:]
    weights = (labels != 0).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(({"token_ids": inputs}, labels, weights))
    return data.shuffle(n, seed=1).batch(BATCH).repeat()


def state(model):
    optimizer = model.optimizer
    return {
        "iterations": int(optimizer.iterations.numpy()),
        "learning_rate": float(optimizer.learning_rate.numpy()),
        **{f"w{i}": w for i, w in enumerate(model.get_weights())},
        **{
            f"o{i}": v.numpy()
            for i, v in enumerate(optimizer.variables)
            if v is not optimizer.iterations
        },
    }


class Recorder(keras.callbacks.Callback):
    def __init__(self, run_dir, snapshots, step_delay):
        super().__init__()
        self.run_dir, self.snapshots, self.step_delay = run_dir, snapshots, step_delay

    def on_train_begin(self, logs=None):
        # Runs after ResumableBackup (earlier in the list) restored the state.
        np.savez(os.path.join(self.run_dir, "begin.npz"), **state(self.model))

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.snapshots:
            os.makedirs(os.path.join(self.run_dir, "steps"), exist_ok=True)
            np.savez(
                os.path.join(self.run_dir, "steps", f"{step}.npz"), **state(self.model)
            )
        with open(os.path.join(self.run_dir, "progress.log"), "a") as f:
            f.write(f"{step}\n")
        time.sleep(self.step_delay)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--snapshots", action="store_true")
    parser.add_argument("--step-delay", type=float, default=0.0)
    args = parser.parse_args()
    os.makedirs(args.run_dir, exist_ok=True)
    callbacks = training.default_callbacks(
        args.run_dir, monitor="loss", backup_save_freq=1, tensorboard=False
    )
    callbacks.append(Recorder(args.run_dir, args.snapshots, args.step_delay))
    history = training.train(
        build_model,
        dataset(),
        epochs=EPOCHS,
        steps_per_epoch=STEPS_PER_EPOCH,
        callbacks=callbacks,
        compile_options=COMPILE,
        verbose=0,
    )
    np.savez(os.path.join(args.run_dir, "final.npz"), **state(history.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
