"""`keras_lm.metrics`: token accuracy and perplexity that ignore padding."""

from keras_lm.training.metrics import MaskedAccuracy, Perplexity

__all__ = ["MaskedAccuracy", "Perplexity"]
