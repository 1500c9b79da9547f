"""Train SentencePiece models and tokenize in the TensorFlow graph (SentencePiece,
and GPT-2's byte-level BPE for converted checkpoints)."""

from keras_lm.tokenizers.byte_pair import BytePairTokenizer
from keras_lm.tokenizers.marian import MarianTokenizer
from keras_lm.tokenizers.sentencepiece_tokenizer import (
    SentencePieceTokenizer,
    check_vocabulary_matches,
)
from keras_lm.tokenizers.train import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    train_sentencepiece,
)

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "BytePairTokenizer",
    "MarianTokenizer",
    "PAD_ID",
    "UNK_ID",
    "SentencePieceTokenizer",
    "check_vocabulary_matches",
    "train_sentencepiece",
]
