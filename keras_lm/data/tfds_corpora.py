"""Corpora from TensorFlow Datasets: (source, target) string lists, or streamed."""

import tensorflow as tf
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


def tfds_text(
    name,
    split="train",
    data_dir=None,
    source_language="en",
    target_language="fr",
    text_feature=None,
    input_context=None,
    shuffle_files=False,
):
    """A TFDS dataset streamed as strings, without loading it into memory.

    Translation datasets (one feature per language, as
    `wmt14_translate/fr-en`, or `TranslationVariableLanguages`, as
    `ted_multi_translate`) give `(source, target)` pairs in that order (read by
    language key, never by position); examples lacking a language are
    dropped. With `text_feature`, the dataset gives that string feature
    instead (documents for `make_lm_dataset`).

    Args:
        name: TFDS name, e.g. `"wmt14_translate/fr-en"`.
        split: TFDS split string.
        data_dir: where TFDS data lives (TFDS default if None).
        source_language: language code of the first element of each pair.
        target_language: language code of the second.
        text_feature: name of a string feature to read as documents.
        input_context: optional `tf.distribute.InputContext`: each input
            pipeline reads its own files.
        shuffle_files: whether TFDS shuffles its files.

    Returns:
        A `tf.data.Dataset` of `(source, target)` string pairs, or of strings.

    Example:
    >>> pairs = tfds_text("wmt14_translate/fr-en", split="train")
    >>> dataset = make_translation_dataset(pairs, tokenizer, batch_size=None,
    ...                                    max_tokens=8192)
    """
    dataset = tfds.load(
        name,
        split=split,
        data_dir=data_dir,
        shuffle_files=shuffle_files,
        read_config=tfds.ReadConfig(input_context=input_context),
    )
    spec = dataset.element_spec
    if text_feature is not None:
        if text_feature not in spec:
            raise ValueError(
                f"{name} has no feature '{text_feature}' (features: "
                f"{sorted(spec)}). Pass text_feature= naming its text, e.g. via "
                "tfds_text(...) to make_lm_dataset."
            )
        return dataset.map(lambda example: example[text_feature])
    if "translations" in spec:
        return (
            dataset.map(
                lambda example: _pick_languages(
                    example["translations"], source_language, target_language
                )
            )
            .filter(lambda source, target, found: found)
            .map(lambda source, target, found: (source, target))
        )
    if source_language in spec and target_language in spec:
        return dataset.map(
            lambda example: (example[source_language], example[target_language])
        )
    raise ValueError(
        f"{name} has features {sorted(spec)}, neither one per language "
        f"('{source_language}', '{target_language}') nor 'translations'. Pass "
        "source_language= and target_language= that match its features, or "
        "text_feature= to read documents."
    )


def _pick_languages(translations, source_language, target_language):
    languages, texts = translations["language"], translations["translation"]
    is_source = tf.equal(languages, source_language)
    is_target = tf.equal(languages, target_language)
    found = tf.reduce_any(is_source) & tf.reduce_any(is_target)
    source = tf.strings.reduce_join(tf.boolean_mask(texts, is_source)[:1])
    target = tf.strings.reduce_join(tf.boolean_mask(texts, is_target)[:1])
    return source, target, found
