"""Decoding with a key/value cache: greedy, beam search and sampling.

`generate(model, token_ids, ...)` decodes from a `TransformerLM` (prompts) or a
`TransformerSeq2Seq` (source sentences) inside one compiled loop, cached per
model and static configuration; `trace_count()` tells how often such a loop
was traced.
"""

from keras_lm.generation.beam_search import length_penalty
from keras_lm.generation.compiled import trace_count
from keras_lm.generation.decode_graph import build_decode_function, decode_inputs
from keras_lm.generation.generate import generate
from keras_lm.generation.lengths import new_token_limits
from keras_lm.generation.text import (
    check_same_special_ids,
    encode_prompts,
    encode_sources,
    translate_ids,
    translate_texts,
)

__all__ = [
    "build_decode_function",
    "check_same_special_ids",
    "decode_inputs",
    "encode_prompts",
    "encode_sources",
    "generate",
    "length_penalty",
    "new_token_limits",
    "trace_count",
    "translate_ids",
    "translate_texts",
]
