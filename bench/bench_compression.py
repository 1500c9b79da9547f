"""Compression of a trained translator: speed, size on disk and BLEU of
float32, int8, structured pruning and sequence-level distillation.

Every row decodes the same held-out sentences of the offline gettext corpus
(`load_gettext_pairs()` -> `split_pairs(seed=0)` -> test split, the first
`--sentences`, as examples/translate_en_fr scores them) with
`keras_lm.generation.translate_texts`, beam 4, batches of 32 sorted by
length, sources cut at `--max-length` pieces. Each row translates the set
once to compile (XLA, one program per width bucket), then once timed: target
tokens (ids up to EOS) per wall second and per CPU second of this process
(steadier on a shared machine). Size is the row's `.keras` file. BLEU is
sacreBLEU's against the references.

Rows:
- float32: the trained model (`--model-dir`: model.keras + spm_en_fr.model,
  as the example writes them).
- int8 / int8_weight_only: `keras_lm.compression.quantize(model, mode)`.
- float32_finetuned: the float32 model fine-tuned exactly as the pruned
  rows are, their control: the gain or loss of the extra training alone.
- pruned_ffn50: half the feed-forward units of every block removed
  (`measure_importance` on `--importance-batches` training batches, then
  `prune`), fine-tuned `--finetune-steps` steps on the training references.
- pruned_ffn75_l1: three quarters of the units and the least important
  encoder and decoder block removed, fine-tuned the same way.
- distilled_ffn75_l1: the same pruned model fine-tuned the same steps on
  the teacher's (float32, beam 4) translations of the first
  `--distill-sources` training sources instead of the references
  (Kim and Rush, 2016), the same sources the reference rows train on.

    python -m bench.bench_compression --model-dir /path/to/translate_en_fr
    python -m bench.bench_compression --quick   # smoke run, tiny model
"""

import argparse
import json
import os
import sys
import tempfile
import time

import keras  # noqa: E402

from bench import common

PRUNED = {
    "pruned_ffn50": dict(ffn_sparsity=0.5),
    "pruned_ffn75_l1": dict(
        ffn_sparsity=0.75, drop_encoder_layers=1, drop_decoder_layers=1
    ),
}


def load_split(pairs=None, seed=0):
    import keras_lm

    if pairs is None:
        pairs = keras_lm.data.load_gettext_pairs()
    train, _, test = keras_lm.data.split_pairs(pairs, seed=seed)
    return train, test


def translate(model, tokenizer, sources, args):
    """(translations, target tokens, wall s, cpu s) of the timed pass."""
    import keras_lm

    options = dict(
        num_beams=args.num_beams,
        max_source_length=args.max_length,
        batch_size=args.batch_size,
    )
    keras_lm.generation.translate_ids(model, tokenizer, sources, **options)
    wall, cpu = time.perf_counter(), time.process_time()
    ids = keras_lm.generation.translate_ids(model, tokenizer, sources, **options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    import tensorflow as tf

    flat = [token for row in ids for token in row]
    ragged = tf.RaggedTensor.from_row_lengths(
        tf.constant(flat, tf.int32, shape=[len(flat)]), [len(row) for row in ids]
    )
    texts = [t.decode("utf-8") for t in tokenizer.detokenize(ragged).numpy()]
    return texts, len(flat), wall, cpu


def size_on_disk(model, directory, name):
    """Bytes of the model's `.keras` file, without optimizer state."""
    path = os.path.join(directory, f"{name}.keras")
    if getattr(model, "optimizer", None) is not None:
        copy = type(model).from_config(model.get_config())
        copy.set_weights(model.get_weights())
        model = copy
    model.save(path)
    return os.path.getsize(path), path


def finetune(model, pairs, tokenizer, args):
    import keras_lm

    keras_lm.training.compile_model(
        model, learning_rate=args.finetune_learning_rate, label_smoothing=0.1
    )
    if args.quick:
        model.run_eagerly = True
    data = keras_lm.data.make_translation_dataset(
        pairs, tokenizer, args.train_batch_size, max_length=args.max_length, seed=0
    ).repeat()
    history = model.fit(data, steps_per_epoch=args.finetune_steps, epochs=1, verbose=0)
    return float(history.history["loss"][-1])


def quick_teacher(train_pairs):
    """A tiny model trained a few steps, standing in for a trained one."""
    import keras_lm

    proto = keras_lm.tokenizers.train_sentencepiece(
        [text for pair in train_pairs for text in pair], vocab_size=40
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
        dropout=0.0,
    )
    keras_lm.training.compile_model(model, learning_rate=3e-3, label_smoothing=0.0)
    model.run_eagerly = True
    data = keras_lm.data.make_translation_dataset(
        train_pairs, tokenizer, 16, max_length=16, seed=0
    ).repeat()
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    return model, tokenizer


def main(argv=None, pairs=None):
    """Runs the benchmark; `pairs` (tests) replaces the gettext corpus."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="model.keras + spm_en_fr.model")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-batch-size", type=int, default=64)
    parser.add_argument("--finetune-steps", type=int, default=150)
    parser.add_argument("--finetune-learning-rate", type=float, default=5e-4)
    parser.add_argument("--importance-batches", type=int, default=8)
    parser.add_argument("--distill-sources", type=int, default=2000)
    parser.add_argument("--output", help="also write the JSON record here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a tiny model trained a few steps, a few sentences",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences = min(args.sentences, 6)
        args.finetune_steps = min(args.finetune_steps, 2)
        args.importance_batches = min(args.importance_batches, 2)
        args.distill_sources = min(args.distill_sources, 32)
        args.max_length = min(args.max_length, 16)
        args.train_batch_size = min(args.train_batch_size, 16)
        args.batch_size = min(args.batch_size, 8)
    elif not args.model_dir:
        parser.error("--model-dir is required unless --quick")

    import keras_lm

    keras.utils.set_random_seed(0)
    all_train_pairs, test_pairs = load_split(pairs)
    train_pairs = all_train_pairs[: args.distill_sources]
    evaluation = test_pairs[: args.sentences]
    sources = [source for source, _ in evaluation]
    references = [target for _, target in evaluation]
    scratch = tempfile.mkdtemp(prefix="bench_compression_")
    if args.quick:
        teacher, tokenizer = quick_teacher(all_train_pairs[:2000])
        teacher_path = size_on_disk(teacher, scratch, "teacher")[1]
    else:
        teacher_path = os.path.join(args.model_dir, "model.keras")
        tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(
            os.path.join(args.model_dir, "spm_en_fr.model")
        )

    def load():
        return keras.saving.load_model(teacher_path, compile=False)

    rows = {}

    def measure(name, model, **extra):
        texts, tokens, wall, cpu = translate(model, tokenizer, sources, args)
        size, _ = size_on_disk(model, scratch, name)
        scores = keras_lm.evaluation.score_translations(texts, references)
        rows[name] = dict(
            target_tokens=tokens,
            tokens_per_s=tokens / wall,
            tokens_per_cpu_s=tokens / cpu,
            size_bytes=size,
            parameters=int(model.count_params()),
            bleu=scores["bleu"],
            chrf=scores["chrf"],
            **extra,
        )
        print(f"{name}: {json.dumps(rows[name])}", file=sys.stderr, flush=True)
        return texts

    teacher = load()
    measure("float32", teacher)
    for mode in keras_lm.compression.quantize_modes():
        measure(mode, keras_lm.compression.quantize(load(), mode))

    start = time.perf_counter()
    importance_data = keras_lm.data.make_translation_dataset(
        train_pairs,
        tokenizer,
        args.train_batch_size,
        max_length=args.max_length,
        seed=1,
    )
    importance = keras_lm.compression.measure_importance(
        teacher, importance_data, num_batches=args.importance_batches
    )
    importance_seconds = time.perf_counter() - start
    # The control for the pruned rows: the same fine-tuning without pruning
    # (an undertrained teacher gains BLEU from the extra steps alone).
    control = keras_lm.compression.prune(teacher)
    loss = finetune(control, train_pairs, tokenizer, args)
    measure("float32_finetuned", control, finetune_loss=loss)
    for name, options in PRUNED.items():
        pruned = keras_lm.compression.prune(teacher, importance, **options)
        loss = finetune(pruned, train_pairs, tokenizer, args)
        measure(name, pruned, finetune_loss=loss, **options)

    start = time.perf_counter()
    distilled_pairs = list(
        keras_lm.compression.distill_pairs(
            teacher,
            tokenizer,
            [source for source, _ in train_pairs],
            num_beams=args.num_beams,
            max_source_length=args.max_length,
        )
    )
    distill_seconds = time.perf_counter() - start
    student = keras_lm.compression.prune(
        teacher, importance, **PRUNED["pruned_ffn75_l1"]
    )
    loss = finetune(student, distilled_pairs, tokenizer, args)
    measure(
        "distilled_ffn75_l1",
        student,
        finetune_loss=loss,
        distilled_pairs=len(distilled_pairs),
    )

    base = rows["float32"]
    for row in rows.values():
        row["speedup"] = row["tokens_per_s"] / base["tokens_per_s"]
        row["speedup_cpu"] = row["tokens_per_cpu_s"] / base["tokens_per_cpu_s"]
        row["size_ratio"] = row["size_bytes"] / base["size_bytes"]
        row["bleu_delta"] = row["bleu"] - base["bleu"]
    record = dict(
        benchmark="compression",
        machine=common.machine(),
        model_dir=args.model_dir,
        quick=args.quick,
        sentences=len(sources),
        num_beams=args.num_beams,
        batch_size=args.batch_size,
        max_length=args.max_length,
        finetune_steps=args.finetune_steps,
        finetune_learning_rate=args.finetune_learning_rate,
        train_batch_size=args.train_batch_size,
        training_pairs=len(train_pairs),
        importance_batches=args.importance_batches,
        importance_seconds=importance_seconds,
        distill_seconds=distill_seconds,
        layer_importance=importance["layers"],
        rows=rows,
    )
    print(markdown(record), file=sys.stderr)
    line = json.dumps(record)
    print(line)
    if args.output:
        with open(args.output, "w") as f:
            f.write(line + "\n")
    return record


def markdown(record):
    lines = [
        "| model | params | size (MB) | target tok/s | vs float32 (wall, CPU) "
        "| BLEU | vs float32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in record["rows"].items():
        lines.append(
            f"| {name} | {row['parameters'] / 1e6:.2f}M "
            f"| {row['size_bytes'] / 1e6:.1f} | {row['tokens_per_s']:.0f} "
            f"| {row['speedup']:.2f}x, {row['speedup_cpu']:.2f}x "
            f"| {row['bleu']:.1f} | {row['bleu_delta']:+.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
