"""Run every benchmark, print one JSON line each, refresh BENCHMARKS.md's table.

Each benchmark runs in its own process (`python -m bench.<name>`), so one
model's compiled functions and memory never affect another's figures. Missing
optional benchmarks (written on other branches) are skipped. The latest record
of each benchmark is kept in bench/results.json, so `--only` refreshes some
rows of the table and keeps the others.

    python -m bench.run_all [--only train_lm memory] [--no-write]
"""

import argparse
import datetime
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

BENCHMARKS = (
    "bench_train_lm",
    "bench_memory",
    "bench_generate",
    "bench_seq2seq_bucketing",
)
ROOT = pathlib.Path(__file__).resolve().parent.parent
TABLE_START = "<!-- figures:start (bench/run_all.py rewrites this table) -->"
TABLE_END = "<!-- figures:end -->"
RESULTS = ROOT / "bench" / "results.json"


def run(module):
    """Run one benchmark module; returns its last JSON line as a dict."""
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if result.returncode:
        raise RuntimeError(f"bench.{module} failed:\n{result.stderr[-3000:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"bench.{module} printed no JSON line:\n{result.stdout}")
    return json.loads(lines[-1])


def _flatten(value, prefix=""):
    """{"a": {"b": 1}} -> ["a.b: 1"]."""
    if not isinstance(value, dict):
        return [f"{prefix}: {value}"]
    items = []
    for key, inner in value.items():
        items += _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    return items


def _figures(record):
    """The headline numbers of a record, as short text for the table."""
    skip = {"benchmark", "backend", "machine", "config", "rounds", "steps_per_window"}
    kept = {k: v for k, v in record.items() if k not in skip and "ratio" not in k}
    return "<br>".join(_flatten(kept))


def _ratio(record):
    return "<br>".join(_flatten({k: v for k, v in record.items() if "ratio" in k}))


def table(records):
    """records: module -> {"date": ..., "record": {...}}."""
    rows = [
        "| Benchmark | Date | Machine | Command | Figures | Ratio (keras_lm / peer) |",
        "|---|---|---|---|---|---|",
    ]
    for module, entry in records.items():
        record, date = entry["record"], entry["date"]
        machine = f"{record.get('machine', '?')}, {record.get('backend', '?')}"
        command = f"`python -m bench.{module}`"
        rows.append(
            f"| {record['benchmark']} | {date} | {machine} | {command} | "
            f"{_figures(record)} | {_ratio(record)} |"
        )
    return "\n".join(rows)


def write_table(path, text):
    content = path.read_text() if path.exists() else ""
    block = f"{TABLE_START}\n{text}\n{TABLE_END}"
    if TABLE_START in content and TABLE_END in content:
        head, rest = content.split(TABLE_START, 1)
        tail = rest.split(TABLE_END, 1)[1]
        content = head + block + tail
    else:
        content = content + ("\n" if content else "") + block + "\n"
    path.write_text(content)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="benchmark names, e.g. train_lm")
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    modules = [
        m
        for m in BENCHMARKS
        if importlib.util.find_spec(f"bench.{m}") is not None
        and (not args.only or m.removeprefix("bench_") in args.only)
    ]
    records = {}
    for module in modules:
        records[module] = run(module)
        print(json.dumps(records[module]), flush=True)
    if not args.no_write:
        saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        date = datetime.date.today().isoformat()
        saved.update({m: {"date": date, "record": r} for m, r in records.items()})
        saved = {m: saved[m] for m in BENCHMARKS if m in saved}
        RESULTS.write_text(json.dumps(saved, indent=1) + "\n")
        write_table(ROOT / "BENCHMARKS.md", table(saved))
    return records


if __name__ == "__main__":
    main()
