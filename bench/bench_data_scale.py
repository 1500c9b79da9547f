"""Data pipelines at scale: in-memory lists vs streamed files vs prepared shards.

For translation (10^5, 10^6, 4x10^6 pairs) and LM data (10^7, 10^8 tokens),
synthetic files are written once from the offline corpus (gettext pairs,
`keras_lm.data.load_gettext_pairs`, sampled with a fixed seed; LM documents
are an English and a French message joined, about 25 tokens). Each
configuration then runs in its own subprocess, which reports:
- peak RSS (`ru_maxrss`) and the RSS right after the imports (the baseline:
  TensorFlow itself);
- time to first batch, from the call that builds the dataset (reading the
  files included: `load_tsv_pairs` / reading lines for the in-memory path);
- steady throughput over the next `--seconds` (pairs/s and target tokens/s
  for translation, tokens/s for LM), or until the epoch ends.

Pipelines: `memory` (today's path: the corpus read into Python lists, then
`make_translation_dataset(pairs)` / `make_lm_dataset(documents)`), `stream`
(`make_*_dataset("dir/*.tsv")`), `shards` (`prepare_shards` once, timed
separately, then `make_*_dataset("dir/shards")`), and, for LM data only,
`tokenize`: the files read as the stream reads them and tokenized, nothing
else, the ceiling of any pipeline that tokenizes as it trains (its
examples/s are documents/s); and `repeat`: one batch repeated, the most this
benchmark's loop can count. Batches are counted inside a `tf.function`, a
few hundred per call, as `model.fit` reads them.

    nice python -m bench.bench_data_scale --work /tmp/data_scale
    python -m bench.bench_data_scale --pairs 100000 --lm-tokens 0 --seconds 10
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FILES = 8
VOCAB_SIZE = 4000
TRANSLATION = dict(batch_size=64, max_length=64)
LM = dict(sequence_length=128, batch_size=32)


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(kind, pipeline, directory, seconds):
    import tensorflow as tf

    from keras_lm.data import (
        load_tsv_pairs,
        make_lm_dataset,
        make_translation_dataset,
    )
    from keras_lm.tokenizers import SentencePieceTokenizer

    tokenizer = SentencePieceTokenizer(os.path.join(directory, "..", "spm.model"))
    baseline = _rss_mib()
    # Start the kernel's peak-RSS counter (VmHWM) again from here, so the
    # import's own peak does not hide a smaller one of the pipeline.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    files = sorted(
        os.path.join(directory, f)
        for f in os.listdir(directory)
        if f.endswith((".tsv", ".txt"))
    )
    source = os.path.join(directory, "shards") if pipeline == "shards" else None
    start = time.perf_counter()
    if kind == "translation":
        if pipeline == "memory":
            source = [pair for f in files for pair in load_tsv_pairs(f)]
        elif pipeline == "stream":
            source = os.path.join(directory, "*.tsv")
        dataset = make_translation_dataset(source, tokenizer, seed=0, **TRANSLATION)
    else:
        if pipeline == "memory":
            source = []
            for f in files:
                with open(f, encoding="utf-8") as lines:
                    source += lines.read().splitlines()
        elif pipeline == "stream":
            source = os.path.join(directory, "*.txt")
        if pipeline == "tokenize":
            dataset = _tokenized_documents(directory, tokenizer)
        elif pipeline == "repeat":
            # One batch, over and over: what this loop can count at most.
            text = os.path.join(directory, "*.txt")
            batch = next(iter(make_lm_dataset(text, tokenizer, seed=0, **LM)))
            dataset = tf.data.Dataset.from_tensors(batch).repeat().prefetch(2)
        else:
            dataset = make_lm_dataset(source, tokenizer, seed=0, **LM)
    iterator = iter(dataset)
    next(iterator)
    first_batch = time.perf_counter() - start
    # Batches are consumed inside a tf.function, as model.fit consumes them
    # (no Python step per batch), a few hundred per call.
    consume = _consumer()
    consume(iter(dataset.take(2)))  # trace outside the timed part
    examples = tokens = batches = 0
    steady_start = time.perf_counter()
    while time.perf_counter() - steady_start < seconds:
        counts = [int(x) for x in consume(iterator)]
        examples, tokens, batches = (
            a + b for a, b in zip((examples, tokens, batches), counts)
        )
        if counts[2] < CONSUME_STEPS:
            break  # the end of the epoch
    elapsed = time.perf_counter() - steady_start
    print(
        json.dumps(
            {
                "peak_rss_mib": round(_rss_mib()),
                "pipeline_peak_rss_mib": round(_status_mib("VmHWM")),
                "baseline_rss_mib": round(baseline),
                "first_batch_s": round(first_batch, 2),
                "examples_per_s": round(examples / elapsed),
                "tokens_per_s": round(tokens / elapsed),
                "batches": batches,
            }
        )
    )


CONSUME_STEPS = 200


def _consumer():
    """A tf.function that reads up to `CONSUME_STEPS` batches from an
    iterator and returns `(examples, tokens, batches)` read."""
    import tensorflow as tf

    @tf.function
    def consume(iterator):
        examples = tokens = batches = tf.constant(0, tf.int64)
        for _ in tf.range(CONSUME_STEPS):
            element = iterator.get_next_as_optional()
            if not element.has_value():
                break
            _, labels, weights = element.get_value()
            examples += tf.shape(labels, tf.int64)[0]
            tokens += tf.cast(tf.reduce_sum(weights), tf.int64)
            batches += 1
        return examples, tokens, batches

    return consume


def _tokenized_documents(directory, tokenizer):
    """The ceiling of any LM stream from text: the stream's own reading and
    SentencePiece, nothing else. Elements mimic batches: `(ids, ids, weights)`
    with a weight per token the stream would pack (each document's ids plus
    its BOS and EOS)."""
    import tensorflow as tf

    from keras_lm.data import sources

    text = sources.text_chunks(
        os.path.join(directory, "*.txt"), "lm", True, 0, None, "error"
    )

    def tokenize(documents):
        ids = tokenizer.tokenize(documents)
        weights = tf.ones([tf.size(ids.flat_values) + 2 * ids.nrows(tf.int32)])
        return ids.flat_values, ids.row_lengths(), weights

    return text.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def _base_pairs():
    from keras_lm.data import load_gettext_pairs

    pairs = load_gettext_pairs()
    if not pairs:
        raise SystemExit("No gettext catalogs under /usr/share/locale/fr: no corpus.")
    return [(e.replace("\t", " "), f.replace("\t", " ")) for e, f in pairs]


def _tokenizer(work, pairs):
    path = os.path.join(work, "spm.model")
    if not os.path.exists(path):
        from keras_lm.tokenizers import train_sentencepiece

        texts = [side for pair in pairs for side in pair]
        proto = train_sentencepiece(texts, vocab_size=VOCAB_SIZE, seed=0)
        with open(path, "wb") as f:
            f.write(proto)
    return path


def _write(directory, suffix, lines_of_file):
    """Writes FILES files once; a `done` file marks a complete set."""
    if os.path.exists(os.path.join(directory, "done")):
        return directory
    os.makedirs(directory, exist_ok=True)
    for index in range(FILES):
        with open(os.path.join(directory, f"part-{index:02d}{suffix}"), "w") as f:
            f.writelines(lines_of_file(index))
    open(os.path.join(directory, "done"), "w").close()
    return directory


def write_pairs(work, pairs, count):
    directory = os.path.join(work, f"pairs-{count}")

    def lines(index):
        rng = random.Random(index)
        for _ in range(count // FILES):
            english, french = pairs[rng.randrange(len(pairs))]
            yield f"{english}\t{french}\n"

    return _write(directory, ".tsv", lines)


def write_documents(work, pairs, tokens, tokens_per_document):
    directory = os.path.join(work, f"lm-{tokens}")
    count = int(tokens / tokens_per_document)

    def lines(index):
        rng = random.Random(100 + index)
        for _ in range(count // FILES):
            english, french = pairs[rng.randrange(len(pairs))]
            yield f"{english} {french}\n"

    return _write(directory, ".txt", lines)


def _tokens_per_document(tokenizer_path, pairs):
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_file=tokenizer_path)
    sample = random.Random(0).sample(pairs, min(2000, len(pairs)))
    ids = processor.encode([f"{e} {f}" for e, f in sample])
    return sum(len(x) + 2 for x in ids) / len(ids)


def _prepare(directory, tokenizer_path, kind):
    shards = os.path.join(directory, "shards")
    if os.path.exists(os.path.join(shards, "manifest.json")):
        return None
    from keras_lm.data import prepare_shards

    start = time.perf_counter()
    suffix = "*.tsv" if kind == "translation" else "*.txt"
    prepare_shards(
        os.path.join(directory, suffix),
        tokenizer_path,
        shards,
        kind=kind,
        num_workers=os.cpu_count(),
    )
    return round(time.perf_counter() - start, 1)


def run_child(kind, pipeline, directory, seconds):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_data_scale",
            "--child",
            f"{kind}:{pipeline}:{directory}",
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/keras_lm_data_scale")
    parser.add_argument("--pairs", default="100000,1000000,4000000")
    parser.add_argument("--lm-tokens", default="10000000,100000000")
    parser.add_argument("--pipelines", default="memory,stream,shards,tokenize,repeat")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, pipeline, directory = args.child.split(":", 2)
        return child(kind, pipeline, directory, args.seconds)

    os.makedirs(args.work, exist_ok=True)
    pairs = _base_pairs()
    tokenizer_path = _tokenizer(args.work, pairs)
    pipelines = args.pipelines.split(",")
    jobs = []
    for count in [int(float(n)) for n in args.pairs.split(",") if int(float(n))]:
        jobs.append(("translation", count, write_pairs(args.work, pairs, count)))
    per_document = _tokens_per_document(tokenizer_path, pairs)
    for tokens in [int(float(n)) for n in args.lm_tokens.split(",") if int(float(n))]:
        directory = write_documents(args.work, pairs, tokens, per_document)
        jobs.append(("lm", tokens, directory))
    rows = []
    for kind, size, directory in jobs:
        for pipeline in pipelines:
            if pipeline in ("tokenize", "repeat") and kind != "lm":
                continue
            prepare_s = None
            if pipeline == "shards":
                prepare_s = _prepare(directory, tokenizer_path, kind)
            result = run_child(kind, pipeline, directory, args.seconds)
            row = {"kind": kind, "size": size, "pipeline": pipeline, **result}
            if prepare_s is not None:
                row["prepare_s"] = prepare_s
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(
        "| data | size | pipeline | peak RSS MiB | peak after imports MiB "
        "(RSS after imports) | first batch s | examples/s | tokens/s | prepare s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(
                f"| {row['kind']} | {row['size']:.0e} | {row['pipeline']} | "
                f"failed: {row['error']} | | | | | |"
            )
            continue
        print(
            f"| {row['kind']} | {row['size']:.0e} | {row['pipeline']} | "
            f"{row['peak_rss_mib']} | {row['pipeline_peak_rss_mib']} "
            f"({row['baseline_rss_mib']}) | "
            f"{row['first_batch_s']} | {row['examples_per_s']} | "
            f"{row['tokens_per_s']} | {row.get('prepare_s', '')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
