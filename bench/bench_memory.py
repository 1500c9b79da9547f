"""Peak host memory of an LM training step: keras_lm vs keras-hub GPT-2.

Each model runs in its own subprocess (same config and batch as
bench_train_lm). The child records its resident set after building and
compiling the Keras model (baseline), runs the warm-up steps (which include
the XLA compile), resets the kernel's peak-RSS counter (/proc/self/clear_refs)
and runs steady-state steps. Reported, in MiB above the baseline:
`train_step_peak` (peak during steady-state steps: activations, gradients,
optimizer slots, XLA buffers) and `with_compile_peak` (peak over the warm-up,
XLA compilation included, read before the reset).

    python -m bench.bench_memory [--steps 3]
"""

import argparse
import json
import os
import re
import subprocess
import sys

from bench import common


def _status_kib(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1))


def child(name, steps):
    from bench import bench_train_lm

    model, batch = bench_train_lm.build(name, dict(common.LM_CONFIG))
    baseline = _status_kib("VmRSS")
    x, y, weights = batch
    model.train_on_batch(x, y, sample_weight=weights)  # compiles
    model.train_on_batch(x, y, sample_weight=weights)
    with_compile = _status_kib("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (peak RSS) to the current RSS
    for _ in range(steps):
        model.train_on_batch(x, y, sample_weight=weights)
    step_peak = _status_kib("VmHWM")
    print(
        json.dumps(
            {
                "baseline_mib": round(baseline / 1024, 1),
                "train_step_peak_mib": round((step_peak - baseline) / 1024, 1),
                "with_compile_peak_mib": round((with_compile - baseline) / 1024, 1),
            }
        )
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.steps)

    results = {}
    for name in ("keras_hub_gpt2", "keras_lm"):
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_memory", "--child", name],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        ).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
    peer, ours = results["keras_hub_gpt2"], results["keras_lm"]
    record = {
        "benchmark": "memory",
        "backend": common.keras.backend.backend(),
        "machine": common.machine(),
        "config": dict(common.LM_CONFIG),
        "memory_mib": results,
        "ratio_train_step_peak_keras_lm_over_keras_hub": round(
            ours["train_step_peak_mib"] / peer["train_step_peak_mib"], 3
        ),
    }
    common.emit(record)
    return record


if __name__ == "__main__":
    main()
