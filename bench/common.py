"""Helpers shared by the benchmarks: the LM config, peak FLOP/s, fair timing.

The machines these run on are shared, so absolute times drift. Every benchmark
therefore times the peer and keras_lm in the same process, in alternating
windows (A, B, B, A, ...), and reports medians and the median paired ratio.
"""

import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

# The decoder-only config compared against keras-hub GPT-2.
LM_CONFIG = dict(
    vocabulary_size=8192,
    num_layers=4,
    num_heads=4,
    hidden_dim=256,
    intermediate_dim=1024,
    sequence_length=128,
    batch_size=32,
)


def machine():
    """One line naming the CPU (or GPU) and core count."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores"
    if keras.backend.backend() == "jax":
        import jax

        text += f", jax {jax.default_backend()}"
    return text


def lm_flops_per_token(
    vocabulary_size, num_layers, hidden_dim, intermediate_dim, sequence_length, **_
):
    """Training FLOPs per token: 6 x matmul parameters + attention.

    Matmul parameters per layer are 4 D^2 (Q, K, V, output) + 2 D F (FFN), plus
    V D for the output projection (tied or not; the input lookup is free).
    Attention: QK^T and AV are 2 T D multiply-adds each per token per layer in
    the forward pass, i.e. 4 T D FLOPs, times 3 for forward + backward:
    12 L T D. The causal half is not subtracted (as in the PaLM MFU formula).
    """
    D, F, L, T = hidden_dim, intermediate_dim, num_layers, sequence_length
    matmul_params = L * (4 * D * D + 2 * D * F) + vocabulary_size * D
    return 6 * matmul_params + 12 * L * T * D


def peak_matmul_flops(size=2048, repeats=5):
    """Best fp32 FLOP/s of an XLA-compiled square matmul on this backend.

    Returns (per wall second, per CPU second of this process)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    chain = 4  # several matmuls per call, to amortize dispatch
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def run(a, b):
            x = a
            for _ in range(chain):
                x = tf.matmul(x, b) * 1e-3
            return x

        a, b = tf.constant(a), tf.constant(b)

        def call():
            return run(a, b).numpy()
    elif backend == "jax":
        import jax
        import jax.numpy as jnp

        @jax.jit
        def run(a, b):
            x = a
            for _ in range(chain):
                x = jnp.matmul(x, b) * 1e-3
            return x

        a, b = jnp.asarray(a), jnp.asarray(b)

        def call():
            return run(a, b).block_until_ready()
    else:
        raise ValueError(f"Unsupported backend for the peak: {backend}")
    call()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    flops = chain * 2 * size**3
    return flops / best, flops / best_cpu


def interleaved(runners, rounds, between=None):
    """Time `runners` (name -> zero-arg callable returning a work count) in
    alternating order (A, B, B, A, ...). `between`, if given, runs before each
    round (e.g. to sample the peak).

    Returns (wall, cpu): name -> list of work per wall second, and work per
    CPU second of this process (all threads), one per round. Under load from
    other processes, wall rates drop while CPU rates barely move, so the CPU
    ratio is the steadier comparison; both are reported.
    """
    names = list(runners)
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    for r in range(rounds):
        if between is not None:
            between()
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            work = runners[name]()
            wall[name].append(work / (time.perf_counter() - start))
            cpu[name].append(work / (time.process_time() - start_cpu))
    return wall, cpu


def median_ratio(numerator, denominator):
    """Median over rounds of the paired ratio numerator[r] / denominator[r]."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


def emit(record):
    """Print one JSON line (the format run_all.py collects)."""
    print(json.dumps(record, sort_keys=False), flush=True)
