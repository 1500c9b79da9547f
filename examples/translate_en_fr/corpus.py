"""Where the translation example's data comes from: in memory or streamed.

Small corpora (`catalog`, `ted`, `tsv:PATH`) are read into lists and split by
`keras_lm.data.split_pairs`; the in-memory pipeline is fastest for them.
Large ones (`wmt14`, `files:GLOB`) are streamed: training reads them inside
`tf.data` and never holds them in memory, SentencePiece trains on a bounded
sample, and only the small held-out sets are lists (for BLEU).
"""

import dataclasses
import glob
import os
import pathlib

import keras_lm

DATASETS = "catalog (offline gettext catalogs), wmt14, ted, tsv:PATH or files:GLOB"
WMT14 = "wmt14_translate/fr-en"
# Held-out pairs read from the last file of files:GLOB (a random sample of
# them if it has more): plenty for validation and BLEU, bounded in memory.
MAX_HELD_OUT_PAIRS = 100_000


@dataclasses.dataclass
class Corpus:
    """One run's data.

    Attributes:
        train: a list of `(english, french)` pairs, or a streamed source for
            `make_translation_dataset` (files, a TFDS name or a dataset).
        tokenizer_texts: the texts SentencePiece is trained on (a bounded
            sample of `train` when it is streamed).
        validation: list of pairs, disjoint from `train`.
        test: list of pairs, disjoint from `train` and `validation`.
        description: what `train` is, for the log.
    """

    train: object
    tokenizer_texts: list
    validation: list
    test: list
    description: str


def load_pairs(dataset, max_pairs=0):
    """(english, french) pairs of an in-memory dataset."""
    if dataset == "catalog":
        pairs = keras_lm.data.load_gettext_pairs()
    elif dataset == "ted":
        pairs = keras_lm.data.load_tfds_pairs("ted_multi_translate", split="train")
    elif dataset.startswith("tsv:"):
        pairs = keras_lm.data.load_tsv_pairs(dataset[len("tsv:") :])
    else:
        raise ValueError(f"Unknown --dataset {dataset!r}. Choose {DATASETS}.")
    return list(pairs)[:max_pairs] if max_pairs else list(pairs)


def load_corpus(dataset, max_pairs=0, tokenizer_sample=1_000_000, seed=0):
    """The `Corpus` named by `--dataset`.

    Args:
        dataset: `catalog`, `ted`, `tsv:PATH` (in memory), `wmt14` or
            `files:GLOB` (streamed).
        max_pairs: > 0: use only this many training pairs (not for files:).
        tokenizer_sample: for streamed datasets, how many pairs SentencePiece
            trains on (both sides of each).
        seed: seed of the splits and samples.
    """
    if dataset == "wmt14":
        return _wmt14(max_pairs, tokenizer_sample)
    if dataset.startswith("files:"):
        if max_pairs:
            raise ValueError(
                f"--max-pairs={max_pairs} does not apply to --dataset files:, "
                "which streams whole files. Pass a glob matching fewer files."
            )
        return _files(dataset[len("files:") :], tokenizer_sample, seed)
    pairs = load_pairs(dataset, max_pairs)
    train, validation, test = keras_lm.data.split_pairs(pairs, seed=seed)
    return Corpus(
        train=train,
        tokenizer_texts=[text for pair in train for text in pair],
        validation=validation,
        test=test,
        description=f"{len(train)} pairs in memory",
    )


def _wmt14(max_pairs, tokenizer_sample):
    """TFDS wmt14 en-fr: train streamed; newstest2013 (its validation split)
    and newstest2014 (its test split) as lists."""
    train = WMT14
    if max_pairs:
        train = keras_lm.data.tfds_text(WMT14, split="train").take(max_pairs)
    # TFDS writes a split's examples in an order shuffled by a hash of their
    # keys, so the first ones are spread over all of wmt14's sub-corpora.
    sample = keras_lm.data.load_tfds_pairs(
        WMT14,
        split="train",
        max_examples=min(tokenizer_sample, max_pairs or tokenizer_sample),
    )
    return Corpus(
        train=train,
        tokenizer_texts=[text for pair in sample for text in pair],
        validation=keras_lm.data.load_tfds_pairs(WMT14, split="validation"),
        test=keras_lm.data.load_tfds_pairs(WMT14, split="test"),
        description=f"{WMT14} train split, streamed"
        + (f" (first {max_pairs} pairs)" if max_pairs else ""),
    )


def _files(pattern, tokenizer_sample, seed):
    """TSV files: the last in sorted order is held out and split between
    validation and test; the others are streamed for training.

    Holding out a whole file keeps the rule simple and the split exact
    without reading the training files; a pair repeated in two files is not
    found, so a held-out file should not repeat the training files.
    """
    files = sorted(path for path in glob.glob(pattern) if os.path.isfile(path))
    if len(files) < 2:
        found = f"only '{files[0]}'" if files else "no file"
        raise ValueError(
            f"--dataset files:{pattern} matches {found}. It needs at least two "
            "TSV files (english<TAB>french lines, plain or .gz): the last in "
            "sorted order is held out for validation and test, the others are "
            "streamed for training. Split the corpus into several files, or "
            "use tsv:PATH for one file that fits in memory."
        )
    held_out_file, train_files = files[-1], [pathlib.Path(f) for f in files[:-1]]
    texts = keras_lm.data.sample_texts(
        held_out_file, max_texts=MAX_HELD_OUT_PAIRS, kind="translation", seed=seed
    )
    held_out = list(zip(texts[0::2], texts[1::2]))
    validation, _, test = keras_lm.data.split_pairs(
        held_out, validation_fraction=0.0, test_fraction=0.5, seed=seed
    )
    if not validation or not test:
        raise ValueError(
            f"The held-out file '{held_out_file}' (the last of files:{pattern} "
            f"in sorted order) gives {len(held_out)} valid pair(s), too few to "
            "split between validation and test. Make the last file hold at "
            "least a few hundred pairs."
        )
    return Corpus(
        train=train_files,
        tokenizer_texts=keras_lm.data.sample_texts(
            train_files, max_texts=tokenizer_sample, kind="translation", seed=seed
        ),
        validation=validation,
        test=test,
        description=f"{len(train_files)} file(s) streamed ({train_files[0]}, ...); "
        f"held out: {held_out_file}",
    )
