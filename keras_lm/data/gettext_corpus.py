"""English->French pairs from the gettext catalogs installed with the system.

Debian-based systems ship human translations of program messages as compiled
catalogs (`/usr/share/locale/<language>/LC_MESSAGES/*.mo`). They are real,
offline parallel text: short UI strings and longer help messages.
"""

import fnmatch
import gettext
import pathlib
import re

from keras_lm.data.report import CorpusReport

# printf (%s, %-10.3lu, %1$s, %<PRIu64>), Python (%(name)s), Qt (%1),
# brace ({0}, {name}) and shell ($VAR, ${VAR}) placeholders.
_PLACEHOLDER = re.compile(
    r"%\([^)]*\)[#0\- +]*\d*(?:\.\d+)?[a-zA-Z]"
    r"|%(?:\d+\$)?[#0\- +']*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
    r"(?:hh|h|ll|l|L|q|j|z|t)?[diouxXeEfFgGaAcspn%]"
    r"|%<\w+>|%\d+"
    r"|\{[^{}\s]*\}"
    r"|\$\{?\w+\}?"
)
# A mnemonic marker is an "_" or "&" right before the letter it underlines,
# at the start of a word ("_Open", "Save &As"); "file_name" is left alone.
_ACCELERATOR = re.compile(r"(?<![\w&])[_&](?=[^\W_])")
_CONTEXT_SEPARATOR = "\x04"


def load_gettext_pairs(
    locale_dir="/usr/share/locale",
    language="fr",
    max_chars=200,
    min_letters=3,
    catalogs=None,
    exclude_catalogs=(),
    return_report=False,
):
    """Reads and cleans (english, translation) pairs from gettext catalogs.

    For every `.mo` file under `<locale_dir>/<language>/LC_MESSAGES/`, each
    message id (English) and its translation become one pair, after:
    dropping the catalog header and all but the first form of plural
    entries; removing `msgctxt` prefixes and keyboard-accelerator markers
    (`_Open` -> `Open`, `&Save` -> `Save`); collapsing whitespace
    (including non-breaking spaces); then skipping pairs where either side
    is empty, both sides are identical, either side is mostly format
    placeholders (`%s`, `%(name)s`, `{0}`, ...), or either side is longer
    than `max_chars`; and keeping only the first pair for each English text.
    Catalogs are read in name order, so the result is deterministic.

    Args:
        locale_dir: the root holding `<language>/LC_MESSAGES/`.
        language: the locale directory name, e.g. `"fr"` or `"fr_CA"`.
        max_chars: longer pairs (either side, after cleaning) are skipped.
        min_letters: a side needs at least this many letters outside
            placeholders, and letters must make up at least half of its
            non-space characters, or the pair is skipped as "placeholders".
        catalogs: optional glob patterns on catalog names (file stems,
            e.g. `["coreutils", "gtk*"]`); only matching ones are read.
        exclude_catalogs: glob patterns of catalogs to leave out, e.g.
            `["iso_*"]` to drop the lists of language and country names.
        return_report: if True, also return a `CorpusReport`.

    Returns:
        A list of `(english, translation)` `str` tuples, or `(pairs, report)`
        when `return_report=True`.

    Example:
    >>> pairs = load_gettext_pairs(exclude_catalogs=["iso_*"])
    >>> ("Could not remove bookmark", "Impossible de supprimer le signet") in pairs
    True
    """
    messages_dir = pathlib.Path(locale_dir) / language / "LC_MESSAGES"
    paths = _select_catalogs(messages_dir, catalogs, exclude_catalogs)
    report = CorpusReport()
    pairs = {}
    for path in paths:
        catalog = _read_catalog(path, report)
        if catalog is None:
            continue
        report.sources.append(str(path))
        for key, translation in catalog.items():
            pair, reason = _clean_entry(key, translation, max_chars, min_letters)
            if reason is None and pair[0] in pairs:
                reason = "duplicate"
            if reason:
                report.skipped[reason] += 1
            else:
                pairs[pair[0]] = pair[1]
    report.pairs = len(pairs)
    if not pairs:
        raise ValueError(
            f"No usable pair in the catalogs under '{messages_dir}' "
            f"({report.summary()}). Check `catalogs`/`exclude_catalogs`, or "
            f"raise max_chars (now {max_chars})."
        )
    report.log(f"load_gettext_pairs('{messages_dir}')", warn_on_skips=False)
    pairs = list(pairs.items())
    return (pairs, report) if return_report else pairs


def _select_catalogs(messages_dir, catalogs, exclude_catalogs):
    if not messages_dir.is_dir():
        raise FileNotFoundError(
            f"No gettext catalogs directory at '{messages_dir}'. Install the "
            "language's packages (e.g. the locale files of coreutils, gtk), or "
            "pass locale_dir= and language= for a directory that has "
            "<language>/LC_MESSAGES/*.mo."
        )
    if isinstance(catalogs, str) or isinstance(exclude_catalogs, str):
        raise TypeError(
            "catalogs and exclude_catalogs must be lists of glob patterns, e.g. "
            f"['gtk*']. Received: catalogs={catalogs!r}, "
            f"exclude_catalogs={exclude_catalogs!r}"
        )
    paths = [
        path
        for path in sorted(messages_dir.glob("*.mo"))
        if (catalogs is None or _matches(path.stem, catalogs))
        and not _matches(path.stem, exclude_catalogs)
    ]
    if not paths:
        raise FileNotFoundError(
            f"No .mo catalog under '{messages_dir}' matches catalogs={catalogs!r}, "
            f"exclude_catalogs={exclude_catalogs!r}."
        )
    return paths


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _read_catalog(path, report):
    try:
        with path.open("rb") as f:
            return gettext.GNUTranslations(f)._catalog
    except (OSError, UnicodeDecodeError):
        # A truncated or foreign-encoded catalog costs its pairs, not the run.
        report.skipped["unreadable_catalog"] += 1
        return None


def _clean_entry(key, translation, max_chars, min_letters):
    """Returns `((english, translation), None)` or `(None, reason)`."""
    if isinstance(key, tuple):
        # Plural entries are keyed (singular msgid, form index); the English
        # plural msgid is not kept by gettext, so only form 0 pairs up.
        key, form = key
        if form != 0:
            return None, "plural_form"
    if key == "":
        return None, "header"
    english = _clean_text(key.rsplit(_CONTEXT_SEPARATOR, 1)[-1])
    translation = _clean_text(translation)
    if not english or not translation:
        return None, "empty"
    if english == translation:
        return None, "identical"
    if len(english) > max_chars or len(translation) > max_chars:
        return None, "too_long"
    if _mostly_placeholders(english, min_letters) or _mostly_placeholders(
        translation, min_letters
    ):
        return None, "placeholders"
    return (english, translation), None


def _clean_text(text):
    text = _ACCELERATOR.sub("", text).replace("&&", "&")
    return " ".join(text.split())


def _mostly_placeholders(text, min_letters):
    letters = sum(char.isalpha() for char in _PLACEHOLDER.sub("", text))
    visible = len(text) - text.count(" ")
    return letters < min_letters or letters < visible / 2
