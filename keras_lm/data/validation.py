"""Argument checks shared by the dataset builders."""

from keras_lm.layers.validation import check_positive_int  # noqa: F401
from keras_lm.special_ids import special_ids_of


def check_special_ids(tokenizer, needs):
    """The tokenizer's `SpecialIds`, after checking that `needs` are set."""
    special_ids = special_ids_of(tokenizer)
    for name in needs:
        value = getattr(special_ids, name)
        if value is None:
            raise ValueError(
                f"The tokenizer has no {name} ({special_ids}); this pipeline "
                "needs one. Train it with keras_lm.tokenizers.train_sentencepiece, "
                "which defines pad, unk, bos and eos."
            )
    return special_ids
