"""Training through the real pipeline learns tasks a working stack must learn."""

import numpy as np
import pytest

from tests.conftest import requires_tensorflow

pytestmark = [requires_tensorflow, pytest.mark.slow]

LETTERS = list("abcdefghij")


def _tokenizer(texts, vocab_size):
    import keras_lm

    proto = keras_lm.tokenizers.train_sentencepiece(
        texts, vocab_size=vocab_size, model_type="bpe", seed=0
    )
    return keras_lm.tokenizers.SentencePieceTokenizer(proto)


def test_reversal_reaches_99_percent_masked_accuracy():
    import keras_lm

    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(4000):
        words = list(rng.choice(LETTERS, size=rng.integers(3, 8)))
        pairs.append((" ".join(words), " ".join(reversed(words))))
    tokenizer = _tokenizer([side for pair in pairs for side in pair], vocab_size=24)
    data = keras_lm.data.make_translation_dataset(
        pairs, tokenizer, batch_size=64, max_length=16, seed=0, drop_remainder=True
    ).repeat()
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=16,
        dropout=0.0,
    )
    keras_lm.training.compile_model(
        model,
        learning_rate=keras_lm.schedules.WarmupCosine(
            peak_learning_rate=3e-3, warmup_steps=100, total_steps=1200
        ),
        label_smoothing=0.0,
    )
    accuracy = 0.0
    for _ in range(6):  # at most 1200 steps; stops as soon as it is learned
        model.fit(data, steps_per_epoch=200, epochs=1, verbose=0)
        held_out = keras_lm.data.make_translation_dataset(
            pairs[:512], tokenizer, batch_size=64, max_length=16, shuffle=False
        )
        accuracy = model.evaluate(held_out, verbose=0, return_dict=True)["accuracy"]
        if accuracy >= 0.99:
            break
    assert accuracy >= 0.99


def test_tiny_lm_perplexity_far_below_uniform():
    import keras_lm

    rng = np.random.default_rng(1)
    # Documents walk the alphabet from a random start: after the first letter
    # every token is determined, so a model that learns gets close to 1.
    documents = []
    for _ in range(600):
        start = rng.integers(len(LETTERS))
        documents.append(
            " ".join(LETTERS[(start + i) % len(LETTERS)] for i in range(12))
        )
    tokenizer = _tokenizer(documents, vocab_size=24)
    data = keras_lm.data.make_lm_dataset(
        documents, tokenizer, sequence_length=32, batch_size=16, seed=0
    )
    model = keras_lm.models.TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        intermediate_dim=64,
        max_sequence_length=32,
    )
    keras_lm.training.compile_model(model, learning_rate=3e-3, label_smoothing=0.0)
    before = model.evaluate(data, verbose=0, return_dict=True)["perplexity"]
    model.fit(data.repeat(), steps_per_epoch=300, epochs=1, verbose=0)
    after = model.evaluate(data, verbose=0, return_dict=True)["perplexity"]
    uniform = tokenizer.vocabulary_size()
    assert before > 0.5 * uniform
    assert after < 0.15 * uniform
