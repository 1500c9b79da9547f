"""The resume test's tiny LM run, fed by the streaming pipeline from files.

Usage: stream_resume_script.py RUN_DIR CORPUS_DIR [--snapshots] [--step-delay S]

CORPUS_DIR holds `spm.model` and `docs-*.txt[.gz]`. The data is
`make_lm_dataset(glob, ...)` (streamed: read, tokenized and packed inside
tf.data, shuffled with a fixed seed), repeated; everything else is
`tests/reliability/resume_script.py`'s run.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lm import models, training  # noqa: E402
from keras_lm.data import make_lm_dataset  # noqa: E402
from keras_lm.tokenizers import SentencePieceTokenizer  # noqa: E402
from tests.reliability import resume_script  # noqa: E402

SEQUENCE_LENGTH = 7


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("corpus_dir")
    parser.add_argument("--snapshots", action="store_true")
    parser.add_argument("--step-delay", type=float, default=0.0)
    args = parser.parse_args()
    os.makedirs(args.run_dir, exist_ok=True)
    # Seed before the dataset exists: tf.random.set_seed clears TensorFlow's
    # kernel cache, destroying the SentencePiece resource a dataset built
    # earlier has captured (see SentencePieceTokenizer._run).
    keras.utils.set_random_seed(0)
    tokenizer = SentencePieceTokenizer(os.path.join(args.corpus_dir, "spm.model"))
    data = make_lm_dataset(
        os.path.join(args.corpus_dir, "docs-*"),
        tokenizer,
        sequence_length=SEQUENCE_LENGTH,
        batch_size=resume_script.BATCH,
        shuffle_buffer=16,
        seed=3,
    ).repeat()

    def build_model():
        return models.TransformerLM(
            vocabulary_size=tokenizer.vocabulary_size(),
            num_layers=1,
            num_heads=2,
            hidden_dim=16,
            intermediate_dim=32,
            max_sequence_length=SEQUENCE_LENGTH,
            dropout=0.0,
        )

    callbacks = training.default_callbacks(
        args.run_dir, monitor="loss", backup_save_freq=1, tensorboard=False
    )
    callbacks.append(
        resume_script.Recorder(args.run_dir, args.snapshots, args.step_delay)
    )
    history = training.train(
        build_model,
        data,
        epochs=resume_script.EPOCHS,
        steps_per_epoch=resume_script.STEPS_PER_EPOCH,
        callbacks=callbacks,
        compile_options=resume_script.COMPILE,
        verbose=0,
    )
    np.savez(
        os.path.join(args.run_dir, "final.npz"), **resume_script.state(history.model)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
