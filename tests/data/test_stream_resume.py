"""Resuming mid-epoch on the streaming path gives the batches, and the
weights, of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from corpus_helpers import batches, make_pairs, write_lines

from keras_lm.data import make_lm_dataset, make_translation_dataset

DOCUMENTS = [f"{s} . {t}" for s, t in make_pairs(200, seed=13)]
SCRIPT = os.path.join(os.path.dirname(__file__), "stream_resume_script.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Three processes train at once; a loaded 2-core machine needs minutes.
TIMEOUT_S = 400


@pytest.fixture
def corpus(tmp_path, tokenizer_proto):
    (tmp_path / "spm.model").write_bytes(tokenizer_proto)
    write_lines(tmp_path / "docs-0.txt", DOCUMENTS[:120])
    write_lines(tmp_path / "docs-1.txt.gz", DOCUMENTS[120:])
    return tmp_path


def _streams(corpus, tokenizer):
    lm = make_lm_dataset(
        str(corpus / "docs-*"),
        tokenizer,
        sequence_length=8,
        batch_size=4,
        shuffle_buffer=32,
        seed=5,
    )
    pairs = str(corpus / "pairs-*")
    write_lines(corpus / "pairs-0.txt", [d.replace(" . ", "\t") for d in DOCUMENTS])
    translation = make_translation_dataset(
        pairs, tokenizer, None, max_length=16, max_tokens=64, shuffle_buffer=32, seed=5
    )
    return lm, translation


def test_skipping_consumed_batches_replays_the_uninterrupted_run(corpus, tokenizer):
    # What ResumableBackup.skip_consumed does in a new process: rebuild the
    # same seeded, repeated stream and skip the batches already trained on.
    for index, dataset in enumerate(_streams(corpus, tokenizer)):
        uninterrupted = batches(dataset.repeat().take(30))
        rebuilt = _streams(corpus, tokenizer)[index]
        resumed = batches(rebuilt.repeat().skip(17).take(13))
        assert resumed == uninterrupted[17:]
        assert uninterrupted[:10] != uninterrupted[10:20]  # epochs differ


def test_iterator_checkpoint_resumes_mid_epoch(corpus, tokenizer, tmp_path):
    for name, dataset in zip(("lm", "translation"), _streams(corpus, tokenizer)):
        iterator = iter(dataset.repeat())
        for _ in range(7):
            next(iterator)
        checkpoint = tf.train.Checkpoint(iterator=iterator)
        path = checkpoint.write(str(tmp_path / name / "ckpt"))
        expected = [
            tf.nest.map_structure(lambda x: x.numpy().tolist(), next(iterator))
            for _ in range(9)
        ]
        fresh = iter(_streams(corpus, tokenizer)[name == "translation"].repeat())
        tf.train.Checkpoint(iterator=fresh).read(path).assert_consumed()
        assert [
            tf.nest.map_structure(lambda x: x.numpy().tolist(), next(fresh))
            for _ in range(9)
        ] == expected


@pytest.mark.slow
def test_sigkill_mid_epoch_on_the_stream_resumes_to_the_same_weights(corpus, tmp_path):
    from tests.reliability.test_resume_after_kill import (
        KILL_AFTER_STEP,
        assert_same_state,
        steps_done,
    )

    def start(run_dir, *args):
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
        return subprocess.Popen(
            [sys.executable, SCRIPT, str(run_dir), str(corpus), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def finish(process):
        output, _ = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 0, output[-3000:]

    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    reference = start(reference_dir)
    victim = start(run_dir, "--step-delay", "0.2")
    rerun = None
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while steps_done(run_dir) < KILL_AFTER_STEP:
            assert victim.poll() is None, victim.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        with open(run_dir / "backup" / "state.json") as f:
            state = json.load(f)
        assert state["consumed_batches"] >= KILL_AFTER_STEP
        assert state["batch"] > 0  # killed in the middle of an epoch
        rerun = start(run_dir)
        finish(rerun)
        finish(reference)
    finally:
        for process in (reference, victim, rerun):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    begin = np.load(run_dir / "begin.npz")
    assert int(begin["iterations"]) == state["consumed_batches"]
    assert_same_state(
        np.load(run_dir / "final.npz"), np.load(reference_dir / "final.npz")
    )
