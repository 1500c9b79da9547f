"""Reusable Transformer layers, computed with `keras.ops` on any backend."""

from keras_lm.layers.logit_bias import LogitBias
from keras_lm.layers.masks import causal_mask, merge_masks, padding_mask
from keras_lm.layers.multi_head_attention import MultiHeadAttention
from keras_lm.layers.position_embedding import PositionEmbedding
from keras_lm.layers.position_encoding import PositionEncoding
from keras_lm.layers.rotary_embedding import RotaryEmbedding
from keras_lm.layers.token_embedding import TokenEmbedding
from keras_lm.layers.transformer_block import TransformerBlock

__all__ = [
    "LogitBias",
    "MultiHeadAttention",
    "PositionEmbedding",
    "PositionEncoding",
    "RotaryEmbedding",
    "TokenEmbedding",
    "TransformerBlock",
    "causal_mask",
    "merge_masks",
    "padding_mask",
]
