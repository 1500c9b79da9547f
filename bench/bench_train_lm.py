"""Decoder-only training throughput: keras_lm TransformerLM vs keras-hub GPT-2.

Both models get the same sizes (bench.common.LM_CONFIG), random weights, the
same synthetic batch, AdamW, sparse cross-entropy from logits and
`jit_compile=True`; each trains with `train_on_batch` on tensors already on
the device. After warm-up (which includes the XLA compile), timed windows
alternate between the two models and the medians are reported.

keras_lm options chosen to match GPT-2: learned positions, tanh-approximated
GELU, pre-norm with a final LayerNorm, tied input/output embeddings, biases,
epsilon 1e-5, same dropout (0 by default, so both use
`ops.dot_product_attention`).

The machine may be shared, so besides wall-clock tokens/s (medians over
windows) both ratio and MFU are also computed per CPU-second of this process,
which load from other processes barely moves: `mfu` is FLOPs per CPU-second
over the matmul peak's FLOPs per CPU-second (the peak is sampled before every
round, best kept). `mfu_wall` uses wall time instead: median tokens/s over the
best peak, a lower bound when the machine is busy.

    python -m bench.bench_train_lm [--rounds 10] [--steps 2] [--dropout 0.0]
"""

import argparse
import statistics

import keras  # noqa: E402  (after common sets the log level)
import numpy as np  # noqa: E402

from bench import common


def build_keras_lm(config, dropout=0.0, **options):
    import keras_lm

    return keras_lm.models.TransformerLM(
        vocabulary_size=config["vocabulary_size"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        intermediate_dim=config["intermediate_dim"],
        max_sequence_length=config["sequence_length"],
        dropout=dropout,
        activation="gelu",
        normalize_first=True,
        position_encoding="learned",
        tie_embeddings=True,
        **options,
    )


def build_gpt2(config, dropout=0.0):
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=config["vocabulary_size"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        intermediate_dim=config["intermediate_dim"],
        max_sequence_length=config["sequence_length"],
        dropout=dropout,
    )
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def make_batch(config, model_name, seed=0):
    """(x, y, sample_weight) of device tensors; ids avoid 0 (padding)."""
    rng = np.random.default_rng(seed)
    B, T = config["batch_size"], config["sequence_length"]
    ids = rng.integers(1, config["vocabulary_size"], size=(B, T + 1)).astype("int32")
    x = {"token_ids": ids[:, :-1]}
    if model_name == "keras_hub_gpt2":
        x["padding_mask"] = np.ones((B, T), "int32")
    y = ids[:, 1:]
    weights = np.ones((B, T), "float32")
    convert = keras.ops.convert_to_tensor
    return {k: convert(v) for k, v in x.items()}, convert(y), convert(weights)


def compile_for_training(model):
    keras.Model.compile(
        model,
        optimizer=keras.optimizers.AdamW(learning_rate=1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )


def build(name, config, dropout=0.0):
    keras.utils.set_random_seed(0)
    if name == "keras_lm":
        model = build_keras_lm(config, dropout)
    elif name == "keras_hub_gpt2":
        model = build_gpt2(config, dropout)
    else:
        raise ValueError(f"Unknown model {name!r}")
    compile_for_training(model)
    return model, make_batch(config, name)


def step_runner(model, batch, steps):
    x, y, weights = batch

    def run():
        for _ in range(steps):
            loss = model.train_on_batch(x, y, sample_weight=weights)
        np.asarray(loss)  # host values: the steps have finished
        return steps

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2, help="steps per window")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.0)
    args = parser.parse_args(argv)

    config = dict(common.LM_CONFIG)
    tokens_per_step = config["batch_size"] * config["sequence_length"]
    peaks = [common.peak_matmul_flops()]  # (wall, cpu) FLOP/s
    runners, params = {}, {}
    for name in ("keras_hub_gpt2", "keras_lm"):
        model, batch = build(name, config, args.dropout)
        params[name] = model.count_params()
        runner = step_runner(model, batch, args.steps)
        for _ in range(args.warmup):
            model.train_on_batch(*batch[:2], sample_weight=batch[2])
        runners[name] = runner
    steps_per_s, steps_per_cpu_s = common.interleaved(
        runners,
        args.rounds,
        between=lambda: peaks.append(common.peak_matmul_flops(repeats=2)),
    )
    peak = max(p[0] for p in peaks)
    peak_cpu = max(p[1] for p in peaks)

    flops_per_token = common.lm_flops_per_token(**config)
    tokens = {
        n: [r * tokens_per_step for r in rates] for n, rates in steps_per_s.items()
    }
    median = {n: statistics.median(t) for n, t in tokens.items()}
    per_cpu_s = {
        n: statistics.median(r) * tokens_per_step for n, r in steps_per_cpu_s.items()
    }
    record = {
        "benchmark": "train_lm",
        "backend": keras.backend.backend(),
        "machine": common.machine(),
        "config": {**config, "dropout": args.dropout, "optimizer": "AdamW"},
        "tokens_per_s": {n: round(v, 1) for n, v in median.items()},
        "tokens_per_cpu_s": {n: round(v, 1) for n, v in per_cpu_s.items()},
        "ratio_keras_lm_over_keras_hub": {
            "wall": round(
                common.median_ratio(tokens["keras_lm"], tokens["keras_hub_gpt2"]), 3
            ),
            "cpu_time": round(
                common.median_ratio(
                    steps_per_cpu_s["keras_lm"], steps_per_cpu_s["keras_hub_gpt2"]
                ),
                3,
            ),
        },
        "params": params,
        "flops_per_token": flops_per_token,
        "peak_matmul_gflops": round(peak / 1e9, 1),
        "peak_matmul_gflops_per_cpu_s": round(peak_cpu / 1e9, 1),
        "mfu": {
            n: round(v * flops_per_token / peak_cpu, 3) for n, v in per_cpu_s.items()
        },
        "mfu_wall": {
            n: round(v * flops_per_token / peak, 3) for n, v in median.items()
        },
        "rounds": args.rounds,
        "steps_per_window": args.steps,
    }
    common.emit(record)
    return record


if __name__ == "__main__":
    main()
