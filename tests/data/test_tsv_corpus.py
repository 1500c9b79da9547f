import logging

import pytest

from keras_lm.data import load_tsv_pairs


def _write(tmp_path, lines):
    path = tmp_path / "fra.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_reads_pairs_and_ignores_attribution_columns(tmp_path):
    path = _write(
        tmp_path,
        [
            b"Go.\tVa !\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272",
            "I'm a student.\tJe suis étudiant.".encode(),
        ],
    )
    assert load_tsv_pairs(path) == [
        ("Go.", "Va !"),
        ("I'm a student.", "Je suis étudiant."),
    ]


def test_broken_lines_are_counted_per_reason_not_fatal(tmp_path, caplog):
    path = _write(
        tmp_path,
        [
            b"Hello.\tBonjour.",
            b"only one column",
            b"\tmissing english",
            b"missing french\t  ",
            b"bad \xff\xfe bytes\tmauvais",
            b"",
            ("x" * 50 + "\t" + "y" * 50).encode(),
            b"Thanks.\tMerci.\textra\tcolumns",
        ],
    )
    with caplog.at_level(logging.WARNING, logger="keras_lm.data"):
        pairs, report = load_tsv_pairs(path, max_line_length=80, return_report=True)
    assert pairs == [("Hello.", "Bonjour."), ("Thanks.", "Merci.")]
    assert report.pairs == 2
    assert report.skipped == {
        "too_few_columns": 1,
        "empty_side": 2,
        "not_utf8": 1,
        "blank": 1,
        "too_long": 1,
    }
    assert "2 empty_side" in caplog.text and "1 not_utf8" in caplog.text


def test_file_without_valid_pair_raises(tmp_path):
    path = _write(tmp_path, [b"no tab here", b"\xff\xff"])
    with pytest.raises(ValueError, match=r"No valid pair.*1 not_utf8"):
        load_tsv_pairs(path)


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.tsv"):
        load_tsv_pairs(tmp_path / "absent.tsv")


def test_bad_max_line_length(tmp_path):
    path = _write(tmp_path, [b"a\tb"])
    with pytest.raises(ValueError, match="max_line_length=0"):
        load_tsv_pairs(path, max_line_length=0)
