"""Sequence-level knowledge distillation (Kim and Rush, 2016).

A teacher translates the training sources with beam search; a smaller
student then trains on `(source, teacher translation)` pairs with the usual
pipeline (`keras_lm.data.make_translation_dataset`) instead of the
references. The student learns the teacher's mode, one consistent output per
source, which a small model fits more easily than the varied references.
"""

from keras_lm.generation.text import translate_texts
from keras_lm.layers.validation import check_positive_int


def distill_pairs(
    teacher,
    tokenizer,
    sources,
    num_beams=4,
    chunk_size=256,
    drop_empty=True,
    **options,
):
    """Yield `(source, teacher translation)` pairs, translating in chunks.

    A generator, so a large corpus streams: each chunk of `chunk_size`
    sources is translated (sorted by length inside `translate_texts`) and
    its pairs yielded before the next chunk is read. Collect it with
    `list(...)` for `make_translation_dataset`, or write it to a TSV file
    for `keras_lm.data.load_tsv_pairs`.

    Args:
        teacher: a trained `TransformerSeq2Seq`.
        tokenizer: its `SentencePieceTokenizer` (the student shares it).
        sources: an iterable of source strings.
        num_beams: the teacher's beam width (Kim and Rush used beam search).
        chunk_size: sources translated per call, > 0.
        drop_empty: skip pairs whose translation is empty (nothing to learn).
        **options: more `keras_lm.generation.translate_texts` options
            (`max_source_length`, `batch_size`, `length_penalty`, ...).

    Yields:
        `(source, translation)` string pairs, in the order of `sources`.

    Example:
    >>> pairs = list(keras_lm.compression.distill_pairs(
    ...     teacher, tokenizer, [en for en, _ in train_pairs]))
    >>> data = keras_lm.data.make_translation_dataset(pairs, tokenizer, 64)
    """
    if not hasattr(teacher, "encode"):
        raise ValueError(
            "distill_pairs needs an encoder-decoder teacher (TransformerSeq2Seq). "
            f"Received: {type(teacher).__name__}"
        )
    check_positive_int("num_beams", num_beams)
    check_positive_int("chunk_size", chunk_size)
    if isinstance(sources, (str, bytes)):
        raise ValueError(
            "sources must be an iterable of strings, not one string. Received: "
            f"{sources[:40]!r}"
        )
    chunk = []
    for source in sources:
        chunk.append(source)
        if len(chunk) == chunk_size:
            yield from _translate(
                teacher, tokenizer, chunk, num_beams, drop_empty, options
            )
            chunk = []
    if chunk:
        yield from _translate(teacher, tokenizer, chunk, num_beams, drop_empty, options)


def _translate(teacher, tokenizer, chunk, num_beams, drop_empty, options):
    translations = translate_texts(
        teacher, tokenizer, chunk, num_beams=num_beams, **options
    )
    for source, translation in zip(chunk, translations):
        if translation or not drop_empty:
            yield source, translation
