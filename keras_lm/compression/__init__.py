"""Smaller, faster models: int8 quantization, structured pruning and
sequence-level knowledge distillation. See docs/compression.md."""

from keras_lm.compression.distill import distill_pairs
from keras_lm.compression.prune import measure_importance, prune
from keras_lm.compression.quantize import quantize, quantize_modes

__all__ = ["distill_pairs", "measure_importance", "prune", "quantize", "quantize_modes"]
