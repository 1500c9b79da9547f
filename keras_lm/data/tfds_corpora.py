"""Parallel corpora from TensorFlow Datasets, as (source, target) strings."""

import tensorflow_datasets as tfds

from keras_lm.data.report import CorpusReport


def load_tfds_pairs(
    name="wmt14_translate/fr-en",
    split="train",
    data_dir=None,
    max_examples=None,
    source_language="en",
    target_language="fr",
    download=True,
    return_report=False,
):
    """Loads (source, target) string pairs from a TFDS translation dataset.

    Two feature layouts are read by language key, never by position, so the
    order is always (source_language, target_language):
    - one feature per language, as `wmt14_translate/fr-en`
      (`{"en": ..., "fr": ...}`; note its `as_supervised` tuples are (fr, en));
    - `TranslationVariableLanguages`, as `ted_multi_translate`
      (`{"translations": {"language": [...], "translation": [...]}}`); talks
      lacking either language are skipped and counted.

    Args:
        name: TFDS name, e.g. `"wmt14_translate/fr-en"`,
            `"ted_multi_translate"`.
        split: TFDS split string, e.g. `"train"`, `"validation[:500]"`.
        data_dir: where TFDS data lives (TFDS default if None).
        max_examples: read at most this many examples (None for all).
        source_language: language code of the first element of each pair.
        target_language: language code of the second element.
        download: whether TFDS may download and prepare missing data.
        return_report: if True, also return a `CorpusReport`.

    Returns:
        A list of `(source, target)` `str` tuples, or `(pairs, report)`.

    Example:
    >>> pairs = load_tfds_pairs("wmt14_translate/fr-en", split="test")
    >>> english, french = pairs[0]
    """
    if max_examples is not None and (
        not isinstance(max_examples, int) or max_examples < 1
    ):
        raise ValueError(
            "max_examples must be a positive integer or None. "
            f"Received: max_examples={max_examples!r}"
        )
    dataset = tfds.load(
        name, split=split, data_dir=data_dir, download=download, shuffle_files=False
    )
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    report = CorpusReport(sources=[f"{name}:{split}"])
    pairs = []
    for example in tfds.as_numpy(dataset):
        pair = _pair(example, source_language, target_language, name)
        if pair is None:
            report.skipped["missing_language"] += 1
        elif not pair[0].strip() or not pair[1].strip():
            report.skipped["empty_side"] += 1
        else:
            pairs.append(pair)
    report.pairs = len(pairs)
    if not pairs:
        raise ValueError(
            f"No ({source_language}, {target_language}) pair in {name}:{split} "
            f"({report.summary()}). Check the split and the language codes."
        )
    report.log(f"load_tfds_pairs('{name}', split='{split}')")
    return (pairs, report) if return_report else pairs


def _pair(example, source_language, target_language, name):
    if "translations" in example:
        texts = dict(
            zip(
                example["translations"]["language"],
                example["translations"]["translation"],
            )
        )
        source = texts.get(source_language.encode())
        target = texts.get(target_language.encode())
        if source is None or target is None:
            return None
        return source.decode("utf-8"), target.decode("utf-8")
    if source_language in example and target_language in example:
        return (
            example[source_language].decode("utf-8"),
            example[target_language].decode("utf-8"),
        )
    raise ValueError(
        f"{name} has features {sorted(example)}, neither one per language "
        f"('{source_language}', '{target_language}') nor 'translations'. Pass "
        "source_language= and target_language= that match its features."
    )
