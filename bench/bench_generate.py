"""Greedy decoding speed: keras_lm `TransformerLM.generate` vs keras-hub GPT-2.

Both models have the same GPT-2 configuration and random weights: vocabulary
8192, hidden 256, 4 layers, 4 heads, feed-forward 1024, pre-norm, learned
positions, GELU, tied embeddings. Both decode greedily with XLA on the same
batch (8 prompts of 16 ids) for 112 new tokens, with no early stop, so both
produce exactly 8 * 112 tokens per call. Each side gets warm-up calls (which
compile), then the median of timed calls is reported.

Run: python -m bench.bench_generate
"""

import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

CONFIG = dict(
    vocabulary_size=8192,
    num_layers=4,
    num_heads=4,
    hidden_dim=256,
    intermediate_dim=1024,
)
BATCH = 8
PROMPT_LENGTH = 16
NEW_TOKENS = 112
WARMUP_CALLS = 2
TIMED_CALLS = 7


def _median_seconds(fns, warmup_calls, timed_calls):
    """Median seconds per call of each function, calls interleaved.

    Interleaving spreads any change in machine load over both sides.
    """
    for _ in range(warmup_calls):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(timed_calls):
        for fn, fn_times in zip(fns, times):
            start = time.perf_counter()
            fn()
            fn_times.append(time.perf_counter() - start)
    return [statistics.median(fn_times) for fn_times in times]


def build_keras_lm(max_length):
    from keras_lm.models import TransformerLM

    return TransformerLM(
        **CONFIG,
        max_sequence_length=max_length,
        dropout=0.0,
        activation="gelu",
        normalize_first=True,
        position_encoding="learned",
        tie_embeddings=True,
        normalization="layer_norm",
    )


def build_keras_hub(max_length):
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        **CONFIG, dropout=0.0, max_sequence_length=max_length
    )
    causal_lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    # XLA, as ours uses; keras-hub's "auto" resolves to no XLA here, which is
    # slower for it on this machine.
    causal_lm.compile(sampler="greedy", jit_compile=True)
    return causal_lm


def main(
    batch=BATCH,
    prompt_length=PROMPT_LENGTH,
    new_tokens=NEW_TOKENS,
    warmup_calls=WARMUP_CALLS,
    timed_calls=TIMED_CALLS,
):
    """Time both libraries; print and return one JSON-able dict."""
    keras.utils.set_random_seed(0)
    max_length = prompt_length + new_tokens
    prompts = (
        np.random.default_rng(0)
        .integers(4, CONFIG["vocabulary_size"], size=(batch, prompt_length))
        .astype("int32")
    )

    ours = build_keras_lm(max_length)

    def run_ours():
        return ours.generate(prompts, max_new_tokens=new_tokens, eos_id=None)

    # keras-hub without a preprocessor takes the whole buffer, prompt then
    # padding, and fills every position where padding_mask is False.
    hub = build_keras_hub(max_length)
    hub_inputs = {
        "token_ids": np.pad(prompts, ((0, 0), (0, new_tokens))),
        "padding_mask": np.arange(max_length)[None, :].repeat(batch, 0) < prompt_length,
    }

    def run_hub():
        return hub.generate(hub_inputs, stop_token_ids=None)

    ours_output = run_ours()
    hub_output = run_hub()["token_ids"]
    assert ours_output.shape == hub_output.shape == (batch, max_length)
    assert (ours_output[:, prompt_length:] != 0).all()

    tokens = batch * new_tokens
    ours_seconds, hub_seconds = _median_seconds(
        [run_ours, run_hub], warmup_calls, timed_calls
    )
    result = {
        "benchmark": "generate_greedy",
        "backend": keras.backend.backend(),
        "config": dict(
            CONFIG,
            batch=batch,
            prompt_length=prompt_length,
            new_tokens=new_tokens,
            position_encoding="learned",
        ),
        "keras_lm_tokens_per_second": round(tokens / ours_seconds, 1),
        "keras_hub_tokens_per_second": round(tokens / hub_seconds, 1),
        "keras_lm_seconds_per_call": round(ours_seconds, 4),
        "keras_hub_seconds_per_call": round(hub_seconds, 4),
        "speedup": round(hub_seconds / ours_seconds, 2),
        "keras_hub_jit_compile": bool(getattr(hub, "jit_compile", None)),
        "timed_calls": timed_calls,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
