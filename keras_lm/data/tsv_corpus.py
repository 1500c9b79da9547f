"""Tab-separated parallel text, as exported by Anki and Tatoeba."""

import pathlib

from keras_lm.data.report import CorpusReport


def load_tsv_pairs(path, max_line_length=1000, return_report=False):
    """Reads (english, french) pairs from `english<TAB>french[<TAB>...]` lines.

    Columns after the second (Tatoeba attributions, Anki tags) are ignored.
    Broken lines never stop the read: each is skipped and counted under one
    reason, `"blank"`, `"too_few_columns"`, `"empty_side"`, `"not_utf8"` or
    `"too_long"`, and the counts are logged as a warning.

    Args:
        path: the `.tsv`/`.txt` file.
        max_line_length: lines with more characters than this are skipped;
            they are usually several sentences glued together or binary junk.
        return_report: if True, also return a `CorpusReport`.

    Returns:
        A list of `(english, french)` `str` tuples, in file order, or
        `(pairs, report)` when `return_report=True`.

    Example:
    >>> pairs = load_tsv_pairs("fra.txt")
    >>> pairs[0]
    ('Go.', 'Va !')
    """
    if not isinstance(max_line_length, int) or max_line_length < 1:
        raise ValueError(
            "max_line_length must be a positive integer. "
            f"Received: max_line_length={max_line_length!r}"
        )
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"TSV file not found: '{path}'. Pass the path of a tab-separated "
            "file with one 'english<TAB>french' pair per line."
        )
    report = CorpusReport(sources=[str(path)])
    pairs = []
    for raw in path.read_bytes().splitlines():
        pair, reason = _parse_line(raw, max_line_length)
        if reason:
            report.skipped[reason] += 1
        else:
            pairs.append(pair)
    report.pairs = len(pairs)
    if not pairs:
        raise ValueError(
            f"No valid pair in '{path}' ({report.summary()}). Each line must be "
            "'english<TAB>french', UTF-8, at most "
            f"max_line_length={max_line_length} characters."
        )
    report.log(f"load_tsv_pairs('{path}')")
    return (pairs, report) if return_report else pairs


def _parse_line(raw, max_line_length):
    """Returns `(pair, None)` or `(None, reason)` for one line of bytes."""
    try:
        line = raw.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        return None, "not_utf8"
    if not line.strip():
        return None, "blank"
    if len(line) > max_line_length:
        return None, "too_long"
    columns = line.split("\t")
    if len(columns) < 2:
        return None, "too_few_columns"
    english, french = columns[0].strip(), columns[1].strip()
    if not english or not french:
        return None, "empty_side"
    return (english, french), None
