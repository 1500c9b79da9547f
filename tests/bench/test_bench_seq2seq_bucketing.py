"""Smoke test of bench.bench_seq2seq_bucketing on a slice of the corpus.

Output is read with capfd: under capsys, sys.stderr has no fileno() and
SentencePiece training fails (io.UnsupportedOperation).

A 1-layer, 16-wide model trained eagerly (tracing alone would take ~8 s
per model) keeps it to seconds; the benchmark itself runs the preset with
XLA.
"""

import json

import pytest

from bench import bench_seq2seq_bucketing

TINY_MODEL = dict(
    num_encoder_layers=1,
    num_decoder_layers=1,
    hidden_dim=16,
    intermediate_dim=32,
    num_heads=2,
)


@pytest.mark.slow
def test_smoke_run_prints_one_json_line_and_returns_it(capfd):
    record = bench_seq2seq_bucketing.main(
        [
            "--max-pairs=600",
            "--vocab-size=200",
            "--max-length=16",
            "--batches=1",
            "--rounds=2",
            "--eager",
        ],
        model_overrides=TINY_MODEL,
    )
    lines = [line for line in capfd.readouterr().out.splitlines() if line]
    assert len(lines) == 1
    assert json.loads(lines[0]) == record

    assert record["benchmark"] == "seq2seq_bucketing"
    assert record["config"]["hidden_dim"] == 16
    assert record["config"]["bucket_boundaries"] == [8, 16]
    variants = ("bucketing", "padded")
    for key in ("real_target_tokens_per_s", "real_target_tokens_per_cpu_s"):
        assert all(record[key][v] > 0 for v in variants)
    assert set(record["ratio_bucketing_over_padded"]) == {"wall", "cpu_time"}
    assert all(r > 0 for r in record["ratio_bucketing_over_padded"].values())
    # Padding to max_length: one shape, and never less padding than buckets.
    assert record["shapes_compiled"]["padded"] == 1
    assert record["shapes_per_epoch"]["padded"] == 1
    assert record["shapes_compiled"]["bucketing"] == 1
    assert record["shapes_per_epoch"]["bucketing"] >= 2
    epoch = record["padding_fraction_epoch"]
    assert 0 <= epoch["bucketing"] < epoch["padded"] < 1
    # Real tokens are label positions; a batch of 64 x 16 holds at most 1024.
    for v in variants:
        assert 0 < record["real_target_tokens_per_batch_timed"][v] <= 64 * 16
