"""Tiny models and data shared by the training tests and their subprocesses.

Notation: B = batch, S = source length, T = target length, V = vocabulary.
"""

import json
import os

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


def tiny_transformer(vocabulary_size=VOCAB, hidden_dim=DIM):
    """The real keras_lm TransformerSeq2Seq at a CPU-test size, no dropout."""
    from keras_lm.models import TransformerSeq2Seq

    return TransformerSeq2Seq(
        vocabulary_size=vocabulary_size,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=16,
        dropout=0.0,
    )


def tiny_transformer_lm(vocabulary_size=VOCAB, hidden_dim=DIM):
    """The real keras_lm TransformerLM at a CPU-test size, no dropout."""
    from keras_lm.models import TransformerLM

    return TransformerLM(
        vocabulary_size=vocabulary_size,
        num_layers=1,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=16,
        dropout=0.0,
    )


# compile_model options for runs whose weights are compared across strategies.
PARITY_COMPILE = {
    "learning_rate": 0.05,
    # Keras clips each replica's share of the gradient before summing them;
    # clipping off keeps the comparison about the loss normalization.
    "global_clipnorm": None,
    # Attention key biases have an exactly zero gradient (softmax ignores a
    # shift shared by all keys). With epsilon=1e-9 Adam turns their float
    # round-off, which depends on the summation order, into full-size steps.
    "epsilon": 1e-3,
    # XLA compile time would dominate these few-step runs.
    "jit_compile": False,
}


class StopAt(keras.callbacks.Callback):
    """Sets `stop_training` after (epoch, batch), on one worker task or all."""

    def __init__(self, epoch, batch, only_task=None):
        super().__init__()
        self.epoch, self.batch, self.only_task = epoch, batch, only_task
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self._current_epoch, batch) != (self.epoch, self.batch):
            return
        if self.only_task is None or self.only_task == _task_index():
            self.model.stop_training = True


def _task_index():
    config = os.environ.get("TF_CONFIG")
    return json.loads(config)["task"]["index"] if config else None


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


def lm_dataset(num_examples, batch_size, seed=0):
    """`translation_dataset`'s targets as a language-modelling dataset."""
    import tensorflow as tf

    inputs, labels, weights = translation_arrays(num_examples, seed=seed)
    inputs = {"token_ids": inputs["decoder_token_ids"]}
    return tf.data.Dataset.from_tensor_slices((inputs, labels, weights)).batch(
        batch_size
    )
