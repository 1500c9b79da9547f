"""Seq2seq training throughput: length bucketing vs padding to max_length.

What a user gets from `keras_lm.data.make_translation_dataset`'s default
(bucketing by length, each batch padded to its own longest sequence) against
`static_shapes=True` (every batch padded to `max_length`), counted in REAL
target tokens (the `sample_weight` sum: label positions that are not padding)
per second, so padding does no useful work on either side.

Setup (both sides): the offline gettext corpus
(`load_gettext_pairs()` -> `split_pairs(seed=0)` -> train split), one shared
SentencePiece vocabulary trained on its English + French text, the same batch
size and `max_length`, a `TransformerSeq2Seq` from a preset (default "tiny",
the preset examples/translate_en_fr trains on CPU; its dropout 0.1 is kept)
compiled with `keras_lm.training.compile_model` (AdamW, label-smoothed masked
loss, XLA on). Each pipeline trains its own model, built from the same seed.

One full epoch of each pipeline is materialized first (so the input pipeline
is not what is timed; it also gives per-epoch shape counts and padding), and
the first `--batches` batches of each are put on the device as the fixed
timed set. Warm-up runs every timed batch once, so every distinct shape is
compiled before timing (XLA compiles one program per input shape; the
first-step times are reported as the compile cost). Then windows of one pass
over each set alternate (A, B, B, A, ...) for `--rounds` rounds; the medians
and median paired ratios are reported, per wall second and per CPU second of
this process (steadier on a shared machine).

    python -m bench.bench_seq2seq_bucketing    # ~5 min on a busy 2-core CPU
    python -m bench.bench_seq2seq_bucketing --preset small --rounds 4
"""

import argparse
import statistics
import time

import keras  # noqa: E402  (after common sets the log level)
import numpy as np  # noqa: E402

from bench import common

VARIANTS = ("bucketing", "padded")


def load_train_pairs(max_pairs=0, seed=0):
    """The train split of the offline gettext corpus (first `max_pairs`)."""
    import keras_lm

    pairs = keras_lm.data.load_gettext_pairs()
    train, _, _ = keras_lm.data.split_pairs(pairs, seed=seed)
    return train[:max_pairs] if max_pairs else train


def make_tokenizer(train_pairs, vocab_size, seed=0):
    """Shared en+fr SentencePiece model; made after seeding, which would
    otherwise drop the tokenizer's TensorFlow resources."""
    import keras_lm

    proto = keras_lm.tokenizers.train_sentencepiece(
        [text for pair in train_pairs for text in pair], vocab_size=vocab_size
    )
    keras.utils.set_random_seed(seed)
    return keras_lm.tokenizers.SentencePieceTokenizer(proto)


def make_pipeline(variant, train_pairs, tokenizer, batch_size, max_length, seed=0):
    import keras_lm

    return keras_lm.data.make_translation_dataset(
        train_pairs,
        tokenizer,
        batch_size,
        max_length=max_length,
        static_shapes=variant == "padded",
        bucket_boundaries=None,  # the default buckets (ignored when padded)
        seed=seed,
    )


def shape_of(batch):
    """(encoder length, decoder length, batch size) of a numpy batch."""
    inputs, labels, _ = batch
    return (
        inputs["encoder_token_ids"].shape[1],
        labels.shape[1],
        labels.shape[0],
    )


def padding_fraction(batches, element_spec):
    """keras_lm.data.padding_fraction over exactly these numpy batches."""
    import tensorflow as tf

    import keras_lm

    dataset = tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=element_spec
    )
    return keras_lm.data.padding_fraction(dataset)


def to_device(batch):
    inputs, labels, weights = batch
    convert = keras.ops.convert_to_tensor
    return (
        {k: convert(v) for k, v in inputs.items()},
        convert(labels),
        convert(weights),
    )


def build_model(preset, vocabulary_size, seed=0, eager=False, **overrides):
    import keras_lm

    keras.utils.set_random_seed(seed)
    config = {**keras_lm.models.get_preset(preset), **overrides}
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=vocabulary_size, **config
    )
    keras_lm.training.compile_model(model, jit_compile=not eager)
    model.run_eagerly = eager  # smoke tests: no trace, no compile
    return model, config


def train_step(model, batch):
    inputs, labels, weights = batch
    return model.train_on_batch(inputs, labels, sample_weight=weights, return_dict=True)


def warm_up(model, device_batches, shapes):
    """One pass; returns the first-step seconds of each new shape."""
    first_step_s = {}
    for batch, shape in zip(device_batches, shapes):
        start = time.perf_counter()
        np.asarray(train_step(model, batch)["loss"])
        if shape not in first_step_s:
            first_step_s[shape] = time.perf_counter() - start
    return first_step_s


def pass_runner(model, device_batches, real_tokens):
    """One timed window: a pass over the fixed batches; returns real tokens."""
    total = float(sum(real_tokens))

    def run():
        for batch in device_batches:
            logs = train_step(model, batch)
        np.asarray(logs["loss"])  # host value: the steps have finished
        return total

    return run


def main(argv=None, model_overrides=None):
    """Runs the benchmark; `model_overrides` (tests) replace preset entries."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="seq2seq preset")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--max-length",
        type=int,
        default=48,
        help="48 as the keras.io recipe; 99.6%% of train pairs fit",
    )
    parser.add_argument(
        "--batches", type=int, default=12, help="timed batches per pipeline"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-pairs", type=int, default=0, help="> 0: smoke runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eager",
        action="store_true",
        help="smoke tests only: train steps run eagerly (no tf.function, no XLA)",
    )
    args = parser.parse_args(argv)

    train_pairs = load_train_pairs(args.max_pairs, args.seed)
    tokenizer = make_tokenizer(train_pairs, args.vocab_size, args.seed)
    vocabulary_size = tokenizer.vocabulary_size()

    # All batches are made before any model: building one reseeds, which
    # would drop the tokenizer's TensorFlow resources under tf.data.
    timed, stats = {}, {}
    for variant in VARIANTS:
        dataset = make_pipeline(
            variant,
            train_pairs,
            tokenizer,
            args.batch_size,
            args.max_length,
            args.seed,
        )
        epoch = list(dataset.as_numpy_iterator())  # one full epoch, in order
        timed[variant] = epoch[: args.batches]
        if len(timed[variant]) < args.batches:
            raise ValueError(
                f"The {variant} pipeline made only {len(epoch)} batches; lower "
                f"--batches (now {args.batches}) or raise --max-pairs."
            )
        real = [float(b[2].sum()) for b in timed[variant]]
        epoch_real = float(sum(b[2].sum() for b in epoch))
        stats[variant] = {
            "shapes_per_epoch": len({shape_of(b) for b in epoch}),
            "padding_timed": padding_fraction(timed[variant], dataset.element_spec),
            "padding_epoch": padding_fraction(epoch, dataset.element_spec),
            "real_per_batch_timed": statistics.mean(real),
            "real_per_batch_epoch": epoch_real / len(epoch),
            "epoch_real_tokens": epoch_real,
        }
        del epoch

    # Both models are built (each from the same seed) before either is
    # warmed: reseeding after a warm-up would make its train step retrace.
    models = {}
    for variant in VARIANTS:
        models[variant], model_config = build_model(
            args.preset,
            vocabulary_size,
            args.seed,
            eager=args.eager,
            **(model_overrides or {}),
        )
    runners = {}
    for variant in VARIANTS:
        batches = timed[variant]
        device_batches = [to_device(b) for b in batches]
        first_step_s = warm_up(
            models[variant], device_batches, [shape_of(b) for b in batches]
        )
        stats[variant]["shapes_timed"] = len(first_step_s)
        stats[variant]["first_step_s"] = statistics.median(first_step_s.values())
        real = [float(b[2].sum()) for b in batches]
        runners[variant] = pass_runner(models[variant], device_batches, real)

    tokens_per_s, tokens_per_cpu_s = common.interleaved(runners, args.rounds)
    median = {v: statistics.median(r) for v, r in tokens_per_s.items()}
    median_cpu = {v: statistics.median(r) for v, r in tokens_per_cpu_s.items()}

    def per_variant(key, digits=3):
        return {v: round(stats[v][key], digits) for v in VARIANTS}

    # First epoch at the measured rate, plus one compile per shape it meets
    # (later epochs reuse the compiled programs).
    first_epoch_s = {
        v: round(
            stats[v]["epoch_real_tokens"] / median[v]
            + stats[v]["shapes_per_epoch"] * stats[v]["first_step_s"],
            1,
        )
        for v in VARIANTS
    }
    record = {
        "benchmark": "seq2seq_bucketing",
        "backend": keras.backend.backend(),
        "machine": common.machine(),
        "config": {
            "preset": args.preset,
            **{k: model_config[k] for k in sorted(model_overrides or {})},
            "vocabulary_size": vocabulary_size,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "bucket_boundaries": _boundaries(args.max_length),
            "train_pairs": len(train_pairs),
            "jit_compile": not args.eager,
        },
        "real_target_tokens_per_s": {v: round(median[v], 1) for v in VARIANTS},
        "real_target_tokens_per_cpu_s": {v: round(median_cpu[v], 1) for v in VARIANTS},
        "ratio_bucketing_over_padded": {
            "wall": round(
                common.median_ratio(tokens_per_s["bucketing"], tokens_per_s["padded"]),
                3,
            ),
            "cpu_time": round(
                common.median_ratio(
                    tokens_per_cpu_s["bucketing"], tokens_per_cpu_s["padded"]
                ),
                3,
            ),
        },
        "padding_fraction_timed": per_variant("padding_timed"),
        "padding_fraction_epoch": per_variant("padding_epoch"),
        "real_target_tokens_per_batch_timed": per_variant("real_per_batch_timed", 1),
        "real_target_tokens_per_batch_epoch": per_variant("real_per_batch_epoch", 1),
        "shapes_compiled": per_variant("shapes_timed", 0),
        "shapes_per_epoch": per_variant("shapes_per_epoch", 0),
        "first_step_s_per_shape": per_variant("first_step_s", 1),
        "first_epoch_s_estimate": first_epoch_s,
        "timed_batches": args.batches,
        "rounds": args.rounds,
    }
    common.emit(record)
    return record


def _boundaries(max_length):
    import keras_lm

    return list(keras_lm.data.default_bucket_boundaries(max_length))


if __name__ == "__main__":
    main()
