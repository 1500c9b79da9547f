import pytest
from corpus_helpers import make_pairs

from keras_lm.tokenizers import SentencePieceTokenizer, train_sentencepiece


@pytest.fixture(scope="session")
def tokenizer_proto():
    texts = [side for pair in make_pairs(300, seed=1) for side in pair]
    return train_sentencepiece(texts, vocab_size=60, seed=0)


@pytest.fixture
def tokenizer(tokenizer_proto):
    return SentencePieceTokenizer(proto=tokenizer_proto)
