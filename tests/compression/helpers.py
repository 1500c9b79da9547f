"""Tiny random models and batches for the compression tests."""

import keras
import numpy as np

import keras_lm

VOCAB = 64


def tiny_seq2seq(seed=0, layers=2, activation="relu", **overrides):
    keras.utils.set_random_seed(seed)
    return keras_lm.models.TransformerSeq2Seq(
        **dict(
            dict(
                vocabulary_size=VOCAB,
                num_encoder_layers=layers,
                num_decoder_layers=layers,
                num_heads=2,
                hidden_dim=16,
                intermediate_dim=24,
                max_sequence_length=16,
                dropout=0.0,
                activation=activation,
            ),
            **overrides,
        )
    )


def batch(seed=0, size=4, source=7, target=5):
    """One `(inputs, labels, sample_weight)` batch of random real ids."""
    rng = np.random.default_rng(seed)
    inputs = {
        "encoder_token_ids": rng.integers(4, VOCAB, (size, source)).astype("int32"),
        "decoder_token_ids": rng.integers(4, VOCAB, (size, target)).astype("int32"),
    }
    labels = rng.integers(4, VOCAB, (size, target)).astype("int32")
    return inputs, labels, np.ones((size, target), "float32")


def logits(model, inputs):
    return keras.ops.convert_to_numpy(model(inputs))
