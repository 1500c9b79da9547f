"""`keras_lm.losses`: the masked, label-smoothed token cross-entropy."""

from keras_lm.training.losses import MaskedSparseCategoricalCrossentropy

__all__ = ["MaskedSparseCategoricalCrossentropy"]
