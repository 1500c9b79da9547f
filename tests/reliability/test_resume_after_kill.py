"""A training process killed with SIGKILL resumes exactly where it stopped.

`resume_script.py` trains 3 epochs of 4 batches, backing up after every
batch. One run goes through uninterrupted and snapshots its state after each
step; another is killed in the middle of epoch 1 and started again. The
restarted run must begin from the state the uninterrupted run had at the
backed-up step (step count, learning rate, weights, Adam moments) and end
with the same weights. Keras's own BackupAndRestore fails the last check: it
restarts the interrupted epoch and trains on its first batches twice.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "resume_script.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOTAL_STEPS = 12
KILL_AFTER_STEP = 6  # epoch 1, after its second batch
TIMEOUT_S = 150


def start(run_dir, *args):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(
        [sys.executable, SCRIPT, str(run_dir), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process):
    output, _ = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, output[-3000:]


def steps_done(run_dir):
    try:
        with open(os.path.join(run_dir, "progress.log")) as f:
            return len(f.read().split())
    except FileNotFoundError:
        return 0


def assert_same_state(actual, expected):
    assert int(actual["iterations"]) == int(expected["iterations"])
    np.testing.assert_allclose(actual["learning_rate"], expected["learning_rate"])
    keys = [k for k in expected.files if k[0] in "wo"]
    assert sorted(actual.files) == sorted(expected.files)
    for key in keys:
        np.testing.assert_allclose(
            actual[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key
        )


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_matches_an_uninterrupted_run(tmp_path):
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    reference = start(reference_dir, "--snapshots")
    # Slow steps give the test time to kill between two of them.
    victim = start(run_dir, "--step-delay", "0.2")
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while steps_done(run_dir) < KILL_AFTER_STEP:
            assert victim.poll() is None, victim.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        with open(run_dir / "backup" / "state.json") as f:
            state = json.load(f)
        assert KILL_AFTER_STEP <= state["consumed_batches"] < TOTAL_STEPS
        assert not (run_dir / "final.npz").exists()
        killed_steps = steps_done(run_dir)
        # The same command again, while the reference run finishes.
        rerun = start(run_dir)
        finish(rerun)
        finish(reference)
    finally:
        for process in (reference, victim, locals().get("rerun")):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    # The rerun starts from the backed-up step, not from its epoch's start.
    begin = np.load(run_dir / "begin.npz")
    assert int(begin["iterations"]) == state["consumed_batches"]
    snapshot = reference_dir / "steps" / f"{state['consumed_batches']}.npz"
    assert_same_state(begin, np.load(snapshot))
    # The rerun trains each remaining step once, and only those.
    with open(run_dir / "progress.log") as f:
        rerun_steps = [int(line) for line in f.read().split()][killed_steps:]
    assert rerun_steps == list(range(state["consumed_batches"] + 1, TOTAL_STEPS + 1))

    assert_same_state(
        np.load(run_dir / "final.npz"), np.load(reference_dir / "final.npz")
    )
    # A run that ends normally removes its backup; its checkpoint loads.
    assert not (run_dir / "backup").exists()
    assert (run_dir / "checkpoints" / "model.keras").exists()
