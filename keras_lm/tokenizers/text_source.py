"""One way to read text for tokenizer training and LM data: strings or files."""

import os
import pathlib


def iter_text_lines(texts_or_files):
    """Yields non-empty lines from a list of strings or from text files.

    A single `str` or path-like is read as one file; an iterable whose items
    are `pathlib.Path` objects is read as files; any other iterable is taken
    as the text itself, one sentence or document per item. Plain strings are
    never guessed to be paths, so a sentence that happens to name a file is
    still treated as text.

    Args:
        texts_or_files: a path (`str` or path-like), an iterable of
            `pathlib.Path`, or an iterable of `str`.

    Yields:
        `str` lines with surrounding whitespace stripped; empty ones skipped.
    """
    for text in _iter_raw(texts_or_files):
        # SentencePiece treats every item as one sentence, and a newline
        # inside one would end up as a piece of its own.
        text = " ".join(text.split())
        if text:
            yield text


def _iter_raw(texts_or_files):
    if isinstance(texts_or_files, (str, os.PathLike)):
        yield from _read_file(texts_or_files)
        return
    if isinstance(texts_or_files, bytes):
        raise TypeError(
            "texts_or_files must be a path, a list of pathlib.Path or an iterable "
            "of str, not bytes. Decode it first, e.g. "
            "`texts_or_files=data.decode('utf-8').splitlines()`."
        )
    for item in texts_or_files:
        if isinstance(item, pathlib.Path):
            yield from _read_file(item)
        elif isinstance(item, str):
            yield item
        else:
            raise TypeError(
                "texts_or_files items must be str (text) or pathlib.Path (files). "
                f"Received an item of type {type(item).__name__}: {item!r:.80}"
            )


def _read_file(path):
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Text file not found: '{path}'. Pass an existing file, or pass a "
            "list of strings to use them as the text itself."
        )
    with path.open(encoding="utf-8", errors="replace") as f:
        yield from f
