"""Smoke test of bench.bench_compression --quick on a small synthetic corpus.

Output is read with capfd: under capsys, sys.stderr has no fileno() and
SentencePiece training fails (io.UnsupportedOperation).
"""

import itertools
import json

import pytest

from bench import bench_compression

VERBS = [("open", "ouvrir"), ("close", "fermer"), ("save", "enregistrer")]
NOUNS = [
    ("the file", "le fichier"),
    ("the window", "la fenêtre"),
    ("the page", "la page"),
    ("the text", "le texte"),
]
ENDS = [
    ("", ""),
    (" now", " maintenant"),
    (" again", " encore"),
    (" later", " plus tard"),
    (" here", " ici"),
]
PAIRS = [
    (f"{v} {n}{e} {i}", f"{fv} {fn}{fe} {i}")
    for (v, fv), (n, fn), (e, fe), i in itertools.product(VERBS, NOUNS, ENDS, range(4))
]


@pytest.mark.slow
def test_quick_run_measures_every_row_and_prints_one_json_line(capfd):
    record = bench_compression.main(["--quick"], pairs=PAIRS)
    lines = [line for line in capfd.readouterr().out.splitlines() if line]
    assert len(lines) == 1
    assert json.loads(lines[0]) == record
    rows = record["rows"]
    assert list(rows) == [
        "float32",
        "int8",
        "int8_weight_only",
        "float32_finetuned",
        "pruned_ffn50",
        "pruned_ffn75_l1",
        "distilled_ffn75_l1",
    ]
    for row in rows.values():
        assert row["size_bytes"] > 0 and 0 <= row["bleu"] <= 100
        assert row["tokens_per_s"] >= 0
    assert rows["float32"]["speedup"] == 1.0
    # Structured pruning gives smaller dense models.
    params = {name: row["parameters"] for name, row in rows.items()}
    assert params["pruned_ffn75_l1"] < params["pruned_ffn50"] < params["float32"]
    assert params["distilled_ffn75_l1"] == params["pruned_ffn75_l1"]
    assert record["rows"]["distilled_ffn75_l1"]["distilled_pairs"] > 0
    assert set(record["layer_importance"]) == {
        "encoder_block_0",
        "encoder_block_1",
        "decoder_block_0",
        "decoder_block_1",
    }
