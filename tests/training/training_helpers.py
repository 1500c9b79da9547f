"""Tiny models and data shared by the training tests and their subprocesses.

Notation: B = batch, S = source length, T = target length, V = vocabulary.
"""

import keras
import numpy as np

VOCAB = 13
DIM = 8


def tiny_seq2seq(vocabulary_size=VOCAB, hidden_dim=DIM, dropout=0.0):
    """Dict-input stand-in for TransformerSeq2Seq: logits [B, T, V]."""
    encoder_ids = keras.Input((None,), dtype="int32", name="encoder_token_ids")
    decoder_ids = keras.Input((None,), dtype="int32", name="decoder_token_ids")
    embedding = keras.layers.Embedding(vocabulary_size, hidden_dim, name="embed")
    context = keras.layers.GlobalAveragePooling1D()(embedding(encoder_ids))  # [B, D]
    hidden = embedding(decoder_ids) + keras.ops.expand_dims(context, 1)  # [B, T, D]
    hidden = keras.layers.Dense(hidden_dim, activation="tanh", name="hidden")(hidden)
    hidden = keras.layers.Dropout(dropout)(hidden)
    logits = keras.layers.Dense(vocabulary_size, name="logits")(hidden)
    return keras.Model(
        {"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids}, logits
    )


def translation_arrays(num_examples, source_length=5, target_length=6, seed=0):
    """Numpy (inputs, labels, sample_weight) with a different padding per row."""
    rng = np.random.default_rng(seed)
    encoder = rng.integers(1, VOCAB, (num_examples, source_length)).astype("int32")
    target = rng.integers(1, VOCAB, (num_examples, target_length + 1)).astype("int32")
    for row in range(num_examples):
        encoder[row, rng.integers(2, source_length + 1) :] = 0
        target[row, rng.integers(2, target_length + 1) :] = 0
    decoder, labels = target[:, :-1], target[:, 1:].copy()
    labels[decoder == 0] = 0
    weights = (labels != 0).astype("float32")
    return (
        {"encoder_token_ids": encoder, "decoder_token_ids": decoder},
        labels,
        weights,
    )


def translation_dataset(num_examples, batch_size, seed=0, **lengths):
    import tensorflow as tf

    arrays = translation_arrays(num_examples, seed=seed, **lengths)
    return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
