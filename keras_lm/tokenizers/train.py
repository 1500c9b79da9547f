"""Train a SentencePiece model with the special ids every keras_lm pipeline uses."""

import io
import itertools
import os
import pathlib
import re

import sentencepiece as spm

from keras_lm.special_ids import SpecialIds
from keras_lm.tokenizers.text_source import iter_text_lines

DEFAULT_SPECIAL_IDS = SpecialIds()
PAD_ID = DEFAULT_SPECIAL_IDS.pad_id
UNK_ID = DEFAULT_SPECIAL_IDS.unk_id
BOS_ID = DEFAULT_SPECIAL_IDS.bos_id
EOS_ID = DEFAULT_SPECIAL_IDS.eos_id
MIN_VOCABULARY_SIZE = 8
MODEL_TYPES = ("unigram", "bpe")

_TOO_SMALL = re.compile(r"smaller than required_chars\. (\d+) vs (\d+)")
_TOO_LARGE = re.compile(r"Vocabulary size too high \((\d+)\).*<= (\d+)")


def train_sentencepiece(
    texts_or_files,
    vocab_size,
    model_type="unigram",
    output_prefix=None,
    character_coverage=1.0,
    max_sentences=1_000_000,
    max_sentence_length=4192,
    byte_fallback=False,
    seed=0,
    special_ids=None,
):
    """Trains a SentencePiece model, by default with pad=0, unk=1, bos=2, eos=3.

    Any other assignment of special ids works too (`special_ids`); the
    tokenizer reports it as `tokenizer.special_ids`, and everything downstream
    reads it from there. Training runs in memory from a stream of sentences;
    files are read line by line.

    Args:
        texts_or_files: an iterable of `str` (one sentence per item), a path
            to a UTF-8 text file, or an iterable of `pathlib.Path` files (one
            sentence per line). Empty lines are ignored.
        vocab_size: int, number of pieces including the 4 special ones.
        model_type: `"unigram"` or `"bpe"`.
        output_prefix: optional path prefix; when given, `<prefix>.model` and
            `<prefix>.vocab` are written too.
        character_coverage: fraction of characters covered by the vocabulary;
            1.0 keeps every character seen (right for English and French).
        max_sentences: at most this many sentences, sampled at random, are
            used for training.
        max_sentence_length: sentences longer than this many bytes are
            skipped by the trainer.
        byte_fallback: whether unknown characters decompose into 256 byte
            pieces instead of `unk`. Needs `vocab_size` above 260.
        seed: int seed for the trainer's sampling, so training is repeatable.
        special_ids: a `keras_lm.SpecialIds` (or dict) placing pad, unk, bos
            and eos; None for the default. unk must be set; pad, bos and eos
            may be None (no such piece). `decoder_start_id` must be None or
            one of the others (SentencePiece has no such piece).

    Returns:
        The serialized model proto as `bytes`, ready for
        `SentencePieceTokenizer(proto=...)`.

    Example:
    >>> proto = train_sentencepiece(
    ...     ["the cat sat", "le chat est assis"] * 50, vocab_size=16
    ... )
    >>> SentencePieceTokenizer(proto=proto).vocabulary_size()
    16
    """
    _validate(vocab_size, model_type, character_coverage, max_sentences)
    special_ids = _check_special_ids(special_ids, vocab_size)
    lines = iter_text_lines(texts_or_files)
    first = next(lines, None)
    if first is None:
        raise ValueError(
            "Cannot train SentencePiece on an empty corpus: texts_or_files "
            "gave no non-empty line. Pass at least a few sentences of text."
        )

    spm.set_random_generator_seed(seed)
    sentences = _Guarded(itertools.chain([first], lines))
    model = io.BytesIO()
    with open(os.devnull, "w") as quiet:
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences,
                model_writer=model,
                logstream=quiet,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                input_sentence_size=max_sentences,
                shuffle_input_sentence=True,
                max_sentence_length=max_sentence_length,
                byte_fallback=byte_fallback,
                **{
                    name: -1 if value is None else value
                    for name, value in (
                        ("pad_id", special_ids.pad_id),
                        ("unk_id", special_ids.unk_id),
                        ("bos_id", special_ids.bos_id),
                        ("eos_id", special_ids.eos_id),
                    )
                },
                # One thread keeps training repeatable for a given seed.
                num_threads=1,
                minloglevel=2,
            )
        except RuntimeError as error:
            sentences.reraise()
            raise _explain(error, vocab_size) from error
    sentences.reraise()
    proto = model.getvalue()
    if output_prefix is not None:
        _write_model_files(proto, output_prefix)
    return proto


class _Guarded:
    """Keeps an error raised while reading text from being lost.

    SentencePiece turns any exception from its sentence iterator into a
    generic RuntimeError; this stops the iteration instead and re-raises the
    original (e.g. a FileNotFoundError naming the path) once training returns.
    """

    def __init__(self, iterator):
        self._iterator = iterator
        self._error = None

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._iterator)
        except StopIteration:
            raise
        except Exception as error:
            self._error = error
            raise StopIteration from error

    def reraise(self):
        if self._error is not None:
            raise self._error


def _validate(vocab_size, model_type, character_coverage, max_sentences):
    if not isinstance(vocab_size, int) or vocab_size < MIN_VOCABULARY_SIZE:
        raise ValueError(
            f"vocab_size must be an integer >= {MIN_VOCABULARY_SIZE}. "
            f"Received: vocab_size={vocab_size!r}"
        )
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"model_type must be one of {MODEL_TYPES}. "
            f"Received: model_type={model_type!r}"
        )
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(
            "character_coverage must be in (0, 1]. "
            f"Received: character_coverage={character_coverage!r}"
        )
    if not isinstance(max_sentences, int) or max_sentences < 1:
        raise ValueError(
            "max_sentences must be a positive integer. "
            f"Received: max_sentences={max_sentences!r}"
        )


def _check_special_ids(special_ids, vocab_size):
    special_ids = SpecialIds.from_value(special_ids)
    special_ids.check(vocab_size, needs=("unk_id",))
    ids = [special_ids.pad_id, special_ids.unk_id, special_ids.bos_id]
    ids = [i for i in ids + [special_ids.eos_id] if i is not None]
    if len(set(ids)) != len(ids):
        raise ValueError(
            "SentencePiece needs distinct pad, unk, bos and eos ids. "
            f"Received: {special_ids}"
        )
    if special_ids.decoder_start_id not in (None, *ids):
        raise ValueError(
            "decoder_start_id must be None or one of the pad, bos and eos ids, "
            f"which SentencePiece can hold. Received: {special_ids}"
        )
    return special_ids


def _explain(error, vocab_size):
    message = str(error)
    too_small = _TOO_SMALL.search(message)
    if too_small:
        required = int(too_small.group(2))
        return ValueError(
            f"vocab_size={vocab_size} is too small for this corpus: it has "
            f"{required} distinct characters plus 4 special pieces to cover. "
            f"Use vocab_size >= {required + 4}, or lower character_coverage."
        )
    too_large = _TOO_LARGE.search(message)
    if too_large:
        limit = int(too_large.group(2))
        return ValueError(
            f"vocab_size={vocab_size} is too large for this corpus: it only "
            f"supports {limit} pieces. Use vocab_size <= {limit}, or train on "
            "more text."
        )
    return ValueError(f"SentencePiece training failed: {message}")


def _write_model_files(proto, output_prefix):
    prefix = pathlib.Path(output_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_name(prefix.name + ".model").write_bytes(proto)
    processor = spm.SentencePieceProcessor(model_proto=proto)
    with prefix.with_name(prefix.name + ".vocab").open("w", encoding="utf-8") as f:
        for i in range(processor.get_piece_size()):
            f.write(f"{processor.id_to_piece(i)}\t{processor.get_score(i)}\n")
