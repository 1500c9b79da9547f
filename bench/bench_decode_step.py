"""What two decoding-step choices buy, on bench_generate's configuration.

keras_lm's decoding loop (1) multiplies by the tied output projection
transposed once before the loop, and (2) projects a one-token query with three
matmuls instead of concatenating the Q/K/V kernels for one. XLA on CPU hoists
neither the transpose nor the concatenation out of the while loop, so the
alternatives copy the embedding table (V x D) and the Q/K/V kernels every
step. This runs the same weights with each choice undone, interleaved with
the default, and reports each one's seconds per call over the default's.

Run: python -m bench.bench_decode_step
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench import bench_generate  # noqa: E402


def _variant(reference, max_length, hoist_projection, split_qkv):
    model = bench_generate.build_keras_lm(max_length)
    model.set_weights(reference.get_weights())
    if not hoist_projection:
        model.output_kernel = lambda: None
    if not split_qkv:
        for block in model.blocks:
            attention = block.self_attention
            attention._can_fuse_projections = lambda query: True
    return model


def main(timed_calls=15, warmup_calls=2):
    keras.utils.set_random_seed(0)
    config = bench_generate
    max_length = config.PROMPT_LENGTH + config.NEW_TOKENS
    prompts = (
        np.random.default_rng(0)
        .integers(4, config.CONFIG["vocabulary_size"], size=(config.BATCH, 16))
        .astype("int32")
    )
    default = config.build_keras_lm(max_length)
    variants = {
        "default": default,
        "projection_transposed_each_step": _variant(default, max_length, False, True),
        "qkv_concatenated_each_step": _variant(default, max_length, True, False),
    }
    runs = {
        name: (
            lambda m=model: m.generate(
                prompts, max_new_tokens=config.NEW_TOKENS, eos_id=None
            )
        )
        for name, model in variants.items()
    }
    expected = runs["default"]()
    for name, run in runs.items():
        if not (run() == expected).all():
            raise AssertionError(f"{name} decodes differently from the default")
    seconds = bench_generate._median_seconds(
        list(runs.values()), warmup_calls, timed_calls
    )
    base = seconds[0]
    result = {
        "benchmark": "decode_step_choices",
        "backend": keras.backend.backend(),
        "seconds_per_call": {n: round(s, 4) for n, s in zip(runs, seconds)},
        "slowdown_vs_default": {n: round(s / base, 3) for n, s in zip(runs, seconds)},
        "timed_calls": timed_calls,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timed-calls", type=int, default=15, help="timed calls")
    main(parser.parse_args().timed_calls)
