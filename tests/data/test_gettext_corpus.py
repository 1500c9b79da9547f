import re
import struct

import pytest
from corpus_helpers import FRENCH_LOCALE, requires_french_catalogs

from keras_lm.data import load_gettext_pairs

HEADER = (
    "Content-Type: text/plain; charset=UTF-8\n"
    "Plural-Forms: nplurals=2; plural=(n > 1);\n"
)


def _write_mo(path, messages):
    """Writes a GNU .mo catalog (little endian, no hash table)."""
    entries = sorted(
        (msgid.encode(), msgstr.encode()) for msgid, msgstr in messages.items()
    )
    count = len(entries)
    ids_table, strs_table = 28, 28 + 8 * count
    offset = 28 + 16 * count
    id_blob, str_blob, id_index, str_index = b"", b"", [], []
    for msgid, _ in entries:
        id_index.append((len(msgid), offset + len(id_blob)))
        id_blob += msgid + b"\0"
    offset += len(id_blob)
    for _, msgstr in entries:
        str_index.append((len(msgstr), offset + len(str_blob)))
        str_blob += msgstr + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, count, ids_table, strs_table, 0, 0)
    tables = b"".join(struct.pack("<2I", *e) for e in id_index + str_index)
    path.write_bytes(header + tables + id_blob + str_blob)


@pytest.fixture
def locale_dir(tmp_path):
    messages_dir = tmp_path / "fr" / "LC_MESSAGES"
    messages_dir.mkdir(parents=True)
    _write_mo(
        messages_dir / "app.mo",
        {
            "": HEADER,
            "_Open the file": "_Ouvrir le fichier",
            "Save &As…": "Enregistrer &sous…",
            "Could not   read\n  %s": "Impossible de lire\u00a0%s",
            "%s: %s": "%s\u00a0: %s",
            "{0} of {1}": "{0} sur {1}",
            "OK": "OK",
            "menu\x04Quit": "Quitter",
            "one file\x00%d files": "un fichier\x00%d fichiers",
            "keep file_name as is": "garder file_name tel quel",
            "__tls_get_addr lost": "__tls_get_addr perdu",
            "word " * 30: "mot " * 30,
        },
    )
    _write_mo(
        messages_dir / "other.mo",
        {"": HEADER, "_Open the file": "Ouvrir ce fichier", "Close": "Fermer"},
    )
    return tmp_path


def test_cleans_and_dedupes_catalog_entries(locale_dir):
    pairs, report = load_gettext_pairs(
        locale_dir=locale_dir, max_chars=100, return_report=True
    )
    # Catalogs in name order, entries in msgid byte order, first one kept.
    assert pairs == [
        ("Could not read %s", "Impossible de lire %s"),
        ("Save As…", "Enregistrer sous…"),
        ("Open the file", "Ouvrir le fichier"),
        ("__tls_get_addr lost", "__tls_get_addr perdu"),
        ("keep file_name as is", "garder file_name tel quel"),
        ("Quit", "Quitter"),
        ("one file", "un fichier"),
        ("Close", "Fermer"),
    ]
    assert len(report.sources) == 2
    assert report.pairs == 8
    assert report.skipped == {
        "header": 2,
        "placeholders": 2,
        "identical": 1,
        "plural_form": 1,
        "too_long": 1,
        "duplicate": 1,
    }


def test_catalog_selection(locale_dir):
    pairs = load_gettext_pairs(locale_dir=locale_dir, catalogs=["oth*"])
    assert pairs == [("Close", "Fermer"), ("Open the file", "Ouvrir ce fichier")]
    only_app = load_gettext_pairs(locale_dir=locale_dir, exclude_catalogs=["other"])
    assert ("Close", "Fermer") not in only_app


def test_missing_directory_and_no_match_name_path(locale_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"xx[/\\]LC_MESSAGES"):
        load_gettext_pairs(locale_dir=locale_dir, language="xx")
    with pytest.raises(FileNotFoundError, match="nothing"):
        load_gettext_pairs(locale_dir=locale_dir, catalogs=["nothing"])


def test_no_usable_pair_raises(tmp_path):
    messages_dir = tmp_path / "fr" / "LC_MESSAGES"
    messages_dir.mkdir(parents=True)
    _write_mo(messages_dir / "empty.mo", {"": HEADER, "OK": "OK"})
    with pytest.raises(ValueError, match=r"No usable pair.*1 identical"):
        load_gettext_pairs(locale_dir=tmp_path)


@requires_french_catalogs
def test_real_french_catalogs_give_clean_pairs():
    pairs, report = load_gettext_pairs(return_report=True)
    assert len(report.sources) == len(list(FRENCH_LOCALE.glob("*.mo")))
    # Tens of thousands on a stock Debian/Ubuntu image; a handful of catalogs
    # still gives hundreds.
    assert len(pairs) >= 100
    english = [pair[0] for pair in pairs]
    assert len(set(english)) == len(english)
    for source, target in pairs:
        assert source != target and source and target
        assert len(source) <= 200 and len(target) <= 200
        assert source == " ".join(source.split())
        assert not re.search(r"(?<![\w&])_(?=[A-Za-z])", source)
