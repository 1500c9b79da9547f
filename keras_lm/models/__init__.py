"""Encoder-decoder and decoder-only Transformer models."""

from keras_lm.models.presets import LM_PRESETS, SEQ2SEQ_PRESETS, get_preset
from keras_lm.models.transformer_lm import TransformerLM
from keras_lm.models.transformer_seq2seq import TransformerSeq2Seq

__all__ = [
    "LM_PRESETS",
    "SEQ2SEQ_PRESETS",
    "TransformerLM",
    "TransformerSeq2Seq",
    "get_preset",
]
