"""Serving speed and BLEU: keras_lm (in process and SavedModel) against
transformers and CTranslate2 on the same weights and the same sentences.

One trained en->fr `TransformerSeq2Seq` (a directory written by
`examples/translate_en_fr/main.py`: `model.keras`, `spm_en_fr.model`) is
written to a Hugging Face directory with `keras_lm.convert.to_huggingface`
(keras_lm's pre-norm seq2seq is written as a Pegasus model), which
transformers loads and CTranslate2's `TransformersConverter` converts (float32
and int8). Every engine then translates the example's held-out sentences
(its split, its order, the first `--sentences`), in batches of `--batch-size`
sentences sorted by source length, with beam `--num-beams`, on `--threads`
threads:

    keras_lm_in_process   translate_texts (XLA), in process
    keras_lm_int8         the same on `keras_lm.compression.quantize(model,
                          "int8")` (int8 weights and activations)
    savedmodel_<sig>      export_translator's signatures, loaded with
                          tf.saved_model.load (serving_default: plain graph;
                          translate_xla: XLA), one request per batch
    transformers          PegasusForConditionalGeneration.generate (torch)
    ctranslate2_float32   Translator.translate_batch
    ctranslate2_int8      the same, int8 weights

Each engine is warmed up first on one batch per batch shape (XLA
compiles there; reported as `warmup_s`). Then every engine translates every
batch once, in `--rounds` rounds of interleaved batches with the engine order
reversed every other round, so load from other processes on this shared
machine falls on all engines alike; wall and CPU time (all threads) are
summed per engine, and ratios are given for both.
Target tokens are the SentencePiece pieces of each engine's output text, so
every engine is counted the same way. Beam scoring is each engine's own
default: keras_lm's GNMT length penalty 0.6, transformers' and CTranslate2's
score / length. Output lengths are bounded by `ceil(1.5 * source + 10)`
pieces (keras_lm per sentence, the peers per batch).

Ratios compare like with like: keras_lm's fastest float32 path (in process or
a SavedModel signature) over transformers and CTranslate2 float32, and
keras_lm int8 over CTranslate2 int8 (and over transformers, which has no int8
path here).

Prints one JSON line (also returned by `main`).
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RATIO, OFFSET = 1.5, 10


def _set_threads(threads):
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        # TensorFlow already ran an op in this process (a test calling main):
        # its thread pools are fixed by then.
        print("threads: TensorFlow already initialized", file=sys.stderr)


def held_out_sentences(dataset, count, seed=0):
    """The example's test split (same loader, same `split_pairs`), first
    `count` pairs, as (sources, references)."""
    import keras_lm
    from examples.translate_en_fr.corpus import load_pairs

    _, _, test_pairs = keras_lm.data.split_pairs(load_pairs(dataset), seed=seed)
    test_pairs = test_pairs[:count]
    return [s for s, _ in test_pairs], [t for _, t in test_pairs]


def sorted_batches(tokenizer, sources, max_source_length, batch_size):
    """Source indices sorted by encoded length (stably), cut into batches,
    with each source's encoded ids (EOS included, cut as in training)."""
    import numpy as np

    from keras_lm.generation import encode_sources

    ids = encode_sources(tokenizer, sources, max_source_length)
    order = np.argsort([len(row) for row in ids], kind="stable")
    batches = [
        [int(i) for i in order[start : start + batch_size]]
        for start in range(0, len(order), batch_size)
    ]
    return batches, ids


def shape_batches(batches, ids, multiple=16):
    """One batch per (rows, padded width): what warms up every compiled shape."""
    seen, chosen = set(), []
    for batch in batches:
        shape = (len(batch), -(-max(len(ids[i]) for i in batch) // multiple))
        if shape not in seen:
            seen.add(shape)
            chosen.append(batch)
    return chosen


def limit(source_tokens):
    return int(math.ceil(RATIO * source_tokens + OFFSET))


# Engines: each is (warm(batches), run(batches) -> {index: text}).
ENGINES = ("keras_lm", "keras_lm_int8", "savedmodel", "transformers", "ct2")
# keras_lm's float32 paths, among which the fastest is compared with the peers.
FLOAT32_ENGINES = (
    "keras_lm_in_process",
    "savedmodel_translate_xla",
    "savedmodel_serving_default",
)


def keras_lm_in_process(model, tokenizer, sources, options):
    import keras_lm

    def run(batches):
        picked = [i for batch in batches for i in batch]
        texts = keras_lm.generation.translate_texts(
            model, tokenizer, [sources[i] for i in picked], **options
        )
        return dict(zip(picked, texts))

    return run


def savedmodel_signature(loaded, name, sources):
    import tensorflow as tf

    signature = loaded.signatures[name]

    def run(batches):
        out = {}
        for batch in batches:
            texts = signature(text=tf.constant([sources[i] for i in batch]))
            for i, text in zip(batch, texts["translation"].numpy()):
                out[i] = text.decode("utf-8")
        return out

    return run


def transformers_engine(hf_dir, tokenizer, ids, num_beams, threads):
    import numpy as np
    import torch
    from transformers import AutoModelForSeq2SeqLM

    torch.set_num_threads(threads)
    model = AutoModelForSeq2SeqLM.from_pretrained(hf_dir).eval()
    pad = tokenizer.special_ids.pad_id
    specials = {pad, tokenizer.special_ids.eos_id, tokenizer.special_ids.start_id}

    def run(batches):
        out = {}
        for batch in batches:
            width = max(len(ids[i]) for i in batch)
            array = np.full((len(batch), width), pad, "int64")
            for row, i in enumerate(batch):
                array[row, : len(ids[i])] = ids[i]
            inputs = torch.from_numpy(array)
            with torch.inference_mode():
                generated = model.generate(
                    input_ids=inputs,
                    attention_mask=inputs != pad,
                    num_beams=num_beams,
                    max_new_tokens=limit(width),
                    do_sample=False,
                )
            rows = [
                [int(t) for t in row if int(t) not in specials] for row in generated
            ]
            for i, text in zip(batch, _detokenize(tokenizer, rows)):
                out[i] = text
        return out

    return run


def ctranslate2_engine(hf_dir, work_dir, tokenizer, ids, quantization, options):
    import ctranslate2
    from ctranslate2.converters import TransformersConverter

    output = os.path.join(work_dir, f"ct2_{quantization or 'float32'}")
    TransformersConverter(hf_dir).convert(output, quantization=quantization, force=True)
    config_file = os.path.join(output, "config.json")
    with open(config_file) as f:
        config = json.load(f)
    # CTranslate2 starts targets with its decoder start piece: keras_lm's.
    config["decoder_start_token"] = tokenizer.id_to_token(
        tokenizer.special_ids.start_id
    )
    with open(config_file, "w") as f:
        json.dump(config, f)
    translator = ctranslate2.Translator(
        output,
        device="cpu",
        compute_type=quantization or "float32",
        intra_threads=options["threads"],
        inter_threads=1,
    )
    pieces = [[tokenizer.id_to_token(t) for t in row] for row in ids]

    def run(batches):
        out = {}
        for batch in batches:
            width = max(len(ids[i]) for i in batch)
            results = translator.translate_batch(
                [pieces[i] for i in batch],
                beam_size=options["num_beams"],
                max_batch_size=options["batch_size"],
                max_decoding_length=limit(width),
            )
            rows = [
                [tokenizer.token_to_id(p) for p in result.hypotheses[0]]
                for result in results
            ]
            for i, text in zip(batch, _detokenize(tokenizer, rows)):
                out[i] = text
        return out

    return run, _directory_bytes(output)


def _detokenize(tokenizer, rows):
    import numpy as np
    import tensorflow as tf

    if not rows:
        return []
    ragged = tf.RaggedTensor.from_row_lengths(
        np.array([t for row in rows for t in row], "int32"),
        [len(row) for row in rows],
    )
    return [t.decode("utf-8") for t in tokenizer.detokenize(ragged).numpy()]


def _directory_bytes(path):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )


def warm_up(run, warm_batches):
    start = time.perf_counter()
    run(warm_batches)
    return time.perf_counter() - start


def timed_rounds(engines, batches, rounds):
    """Every engine translates every batch once, in `rounds` rounds of
    interleaved batches, the engine order reversed every other round
    (A, B, B, A, ...), so load from other processes falls on all engines
    alike. Returns {name: (texts by index, wall s, cpu s)}."""
    totals = {name: [{}, 0.0, 0.0] for name in engines}
    names = list(engines)
    for round_index in range(rounds):
        subset = batches[round_index::rounds]
        if not subset:
            continue
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            cpu, start = time.process_time(), time.perf_counter()
            texts = engines[name](subset)
            totals[name][1] += time.perf_counter() - start
            totals[name][2] += time.process_time() - cpu
            totals[name][0].update(texts)
    return totals


def summarize(texts, wall, cpu, warmup, batches, tokenizer, references):
    import keras_lm

    picked = [i for batch in batches for i in batch]
    hypotheses = [texts[i] for i in picked]
    pieces = int(tokenizer.tokenize(hypotheses).row_lengths().numpy().sum())
    score = keras_lm.evaluation.score_translations(
        hypotheses, [references[i] for i in picked]
    )
    return {
        "target_tokens": pieces,
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "target_tokens_per_s": round(pieces / wall, 1),
        "target_tokens_per_cpu_s": round(pieces / cpu, 1) if cpu > 0 else None,
        "warmup_s": round(warmup, 2),
        "bleu": round(score["bleu"], 2),
    }


def _ratios(results, key):
    speed = {name: r[key] for name, r in results.items() if r[key]}
    ours = {name: speed[name] for name in FLOAT32_ENGINES if name in speed}
    ratios = {}
    if ours:
        fastest = max(ours, key=ours.get)
        ratios["keras_lm_fastest"] = fastest
        for peer in ("transformers", "ctranslate2_float32", "ctranslate2_int8"):
            if peer in speed:
                ratios[f"fastest_over_{peer}"] = round(ours[fastest] / speed[peer], 3)
    if "keras_lm_int8" in speed:
        for peer in ("ctranslate2_int8", "transformers", "keras_lm_in_process"):
            if peer in speed:
                ratios[f"keras_lm_int8_over_{peer}"] = round(
                    speed["keras_lm_int8"] / speed[peer], 3
                )
    if "keras_lm_in_process" in speed:
        for name in ("savedmodel_translate_xla", "savedmodel_serving_default"):
            if name in speed:
                ratios[f"{name}_over_in_process"] = round(
                    speed[name] / speed["keras_lm_in_process"], 3
                )
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-dir",
        required=True,
        help="a translate_en_fr output directory (model.keras, spm_en_fr.model)",
    )
    parser.add_argument("--dataset", default="catalog", help="as in the example")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="--sentences 64")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--length-penalty-mode",
        choices=("gnmt", "hf"),
        default="gnmt",
        help="keras_lm in-process beam scoring: gnmt (its default) or hf "
        "(transformers' score / |Y|^alpha)",
    )
    parser.add_argument("--max-source-length", type=int, default=48)
    parser.add_argument(
        "--engines",
        default="all",
        help="comma-separated subset of: "
        "keras_lm,keras_lm_int8,savedmodel,transformers,ct2",
    )
    parser.add_argument("--seed", type=int, default=0, help="the example's split seed")
    parser.add_argument(
        "--rounds", type=int, default=4, help="interleaved timing rounds"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences = 64
    if args.sentences < 1:
        parser.error(f"--sentences must be >= 1. Received: {args.sentences}")
    engines = set(ENGINES) if args.engines == "all" else set(args.engines.split(","))
    if engines - set(ENGINES):
        parser.error(
            f"Unknown --engines {sorted(engines - set(ENGINES))}. "
            f"Choose among {','.join(ENGINES)}."
        )
    _set_threads(args.threads)
    load_at_start = os.getloadavg()

    import keras

    import keras_lm
    from bench.bench_compression import size_on_disk
    from bench.common import machine

    model_path = os.path.join(args.model_dir, "model.keras")
    model = keras.saving.load_model(model_path)
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(
        os.path.join(args.model_dir, "spm_en_fr.model")
    )
    sources, references = held_out_sentences(args.dataset, args.sentences, args.seed)
    batches, ids = sorted_batches(
        tokenizer, sources, args.max_source_length, args.batch_size
    )
    warm = shape_batches(batches, ids)
    options = dict(
        num_beams=args.num_beams,
        max_source_length=args.max_source_length,
        source_length_ratio=RATIO,
        source_length_offset=OFFSET,
        batch_size=args.batch_size,
        length_penalty_mode=args.length_penalty_mode,
    )
    runs, warmups, sizes = {}, {}, {}

    def record(name, run):
        runs[name] = run
        warmups[name] = warm_up(run, warm)
        print(f"{name}: warm-up {warmups[name]:.1f} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as work:
        if "keras_lm" in engines:
            record(
                "keras_lm_in_process",
                keras_lm_in_process(model, tokenizer, sources, options),
            )
        if "keras_lm_int8" in engines:
            # quantize works in place: a second copy, so the float32 model
            # the other engines use stays float32.
            quantized = keras_lm.compression.quantize(
                keras.saving.load_model(model_path), "int8"
            )
            sizes["keras_lm_int8"], _ = size_on_disk(quantized, work, "int8")
            record(
                "keras_lm_int8",
                keras_lm_in_process(quantized, tokenizer, sources, options),
            )
        if "savedmodel" in engines:
            export = os.path.join(work, "saved_model")
            keras_lm.export.export_translator(
                model,
                tokenizer,
                export,
                num_beams=args.num_beams,
                max_source_length=args.max_source_length,
                source_length_ratio=RATIO,
                source_length_offset=OFFSET,
                batch_size=args.batch_size,
            )
            sizes["savedmodel"] = _directory_bytes(export)
            loaded = keras_lm.export.load_exported(export)
            for name in ("translate_xla", "serving_default"):
                record(
                    f"savedmodel_{name}", savedmodel_signature(loaded, name, sources)
                )
        hf_dir = os.path.join(work, "hf")
        if engines & {"transformers", "ct2"}:
            keras_lm.convert.to_huggingface(model, tokenizer, hf_dir)
        if "transformers" in engines:
            record(
                "transformers",
                transformers_engine(
                    hf_dir, tokenizer, ids, args.num_beams, args.threads
                ),
            )
        if "ct2" in engines:
            ct2_options = dict(
                threads=args.threads,
                num_beams=args.num_beams,
                batch_size=args.batch_size,
            )
            for quantization in (None, "int8"):
                run, size = ctranslate2_engine(
                    hf_dir, work, tokenizer, ids, quantization, ct2_options
                )
                name = f"ctranslate2_{quantization or 'float32'}"
                sizes[name] = size
                record(name, run)

        totals = timed_rounds(runs, batches, args.rounds)
    results = {
        name: summarize(texts, wall, cpu, warmups[name], batches, tokenizer, references)
        for name, (texts, wall, cpu) in totals.items()
    }
    for name, result in results.items():
        print(f"{name}: {result}", file=sys.stderr, flush=True)
    record_out = {
        "benchmark": "serving",
        "machine": machine(),
        "threads": args.threads,
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "config": {
            "model_dir": args.model_dir,
            "sentences": len(sources),
            "batch_size": args.batch_size,
            "num_beams": args.num_beams,
            "max_source_length": args.max_source_length,
            "keras_lm_length_penalty_mode": args.length_penalty_mode,
            "hf_format": "pegasus (pre-norm seq2seq)",
        },
        "results": results,
        "size_bytes": sizes,
        "ratios": _ratios(results, "target_tokens_per_s"),
        "ratios_per_cpu_s": _ratios(results, "target_tokens_per_cpu_s"),
    }
    print(json.dumps(record_out))
    return record_out


if __name__ == "__main__":
    main()
