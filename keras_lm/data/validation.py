"""Argument checks shared by the dataset builders."""

from keras_lm.layers.validation import check_positive_int  # noqa: F401


def check_special_ids(tokenizer, needs):
    """Padding must be id 0 (masks are `ids != 0`); BOS/EOS must exist."""
    if tokenizer.pad_id != 0:
        raise ValueError(
            f"The tokenizer's pad id must be 0. Received: pad_id={tokenizer.pad_id}. "
            "Train it with keras_lm.tokenizers.train_sentencepiece, which fixes "
            "pad=0, unk=1, bos=2, eos=3."
        )
    for name in needs:
        if getattr(tokenizer, name) < 0:
            raise ValueError(
                f"The tokenizer has no {name.split('_')[0].upper()} token "
                f"({name}={getattr(tokenizer, name)}). Train it with "
                "keras_lm.tokenizers.train_sentencepiece, which defines one."
            )
