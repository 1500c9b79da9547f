"""A tiny SentencePiece tokenizer and a random-init TransformerLM that
agrees with it, for the text-level evaluation tests."""

import keras_lm
from tests.data.corpus_helpers import make_pairs

VOCAB = 60


def tiny_tokenizer():
    texts = [side for pair in make_pairs(200, seed=1) for side in pair]
    proto = keras_lm.tokenizers.train_sentencepiece(texts, vocab_size=VOCAB)
    return keras_lm.tokenizers.SentencePieceTokenizer(proto)


def tiny_model(tokenizer, max_sequence_length=32):
    return keras_lm.models.TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=max_sequence_length,
        special_ids=tokenizer.special_ids,
    )
