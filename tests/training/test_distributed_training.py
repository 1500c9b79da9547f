"""Training under real multi-replica strategies, in subprocesses: logical
devices and collective ops must be configured before TensorFlow starts."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lm import training
from tests.training import training_helpers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TIMEOUT_S = 150


def _env(**extra):
    env = dict(os.environ)
    # A TF_CONFIG inherited from the caller would make the child join its cluster.
    env.pop("TF_CONFIG", None)
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, model", [("train", "seq2seq"), ("fit", "seq2seq"), ("fit", "lm")]
)
def test_mirrored_two_cpus_matches_one_device(tmp_path, mode, model):
    # "fit": plain model.fit in the strategy's scope. Keras builds the
    # compiled loss and metrics from the first batch averaged over replicas,
    # float64 ids included, which the models' input check used to refuse.
    out = str(tmp_path / "parity.npz")
    script = os.path.join(HERE, "mirrored_parity_script.py")
    result = subprocess.run(
        [sys.executable, script, out, mode, model],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = np.load(out)
    assert int(data["replicas"]) == 2
    # The replicas' halves of each batch hold different numbers of real
    # tokens: only a loss normalized by the global count matches here.
    np.testing.assert_allclose(
        data["mirrored_losses"], data["single_losses"], rtol=1e-5
    )
    names = [k for k in data.files if k.startswith("single_weight_")]
    assert len(names) > 4
    for name in names:
        single, mirrored = data[name], data[name.replace("single", "mirrored")]
        np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _multi_worker_single_device_reference():
    """What the two workers must reproduce: the same run on one device."""

    def build_model():
        keras.utils.set_random_seed(0)
        return training_helpers.tiny_transformer()

    return training.train(
        build_model,
        training_helpers.translation_dataset(16, batch_size=4, seed=1),
        validation_data=training_helpers.translation_dataset(8, batch_size=4, seed=2),
        epochs=2,
        strategy=tf.distribute.get_strategy(),
        callbacks=[training_helpers.StopAt(epoch=1, batch=1)],
        compile_options=training_helpers.PARITY_COMPILE,
        verbose=0,
    )


@pytest.mark.slow
def test_two_workers_train_to_identical_weights(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes, logs = [], []
    try:
        for index in range(2):
            tf_config = {
                "cluster": {"worker": workers},
                "task": {"type": "worker", "index": index},
            }
            log = open(tmp_path / f"worker{index}.log", "w")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        os.path.join(HERE, "multi_worker_script.py"),
                        str(tmp_path),
                    ],
                    env=_env(TF_CONFIG=json.dumps(tf_config)),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        codes = [p.wait(timeout=TIMEOUT_S) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    for index, code in enumerate(codes):
        text = (tmp_path / f"worker{index}.log").read_text()
        assert code == 0, f"worker {index} failed:\n{text[-3000:]}"

    results = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(2)]
    assert [r["strategy"] for r in results] == ["CollectiveAllReduceStrategy"] * 2
    assert [r["replicas"] for r in results] == [2, 2]
    assert [r["chief"] for r in results] == [True, False]
    assert results[0]["sha256"] == results[1]["sha256"]
    assert results[0]["history"] == results[1]["history"]
    assert results[0]["epochs"] == [0, 1]

    weights = [np.load(tmp_path / f"{i}.npz") for i in range(2)]
    reference = _multi_worker_single_device_reference()
    for i, expected in enumerate(reference.model.get_weights()):
        for worker in weights:
            np.testing.assert_allclose(
                worker[f"arr_{i}"], expected, rtol=1e-5, atol=1e-6
            )
    for key, values in reference.history.items():
        np.testing.assert_allclose(
            results[0]["history"][key], values, rtol=1e-5, err_msg=key
        )
    # The chief writes the shared paths; the other worker writes its own.
    run = tmp_path / "run"
    assert (run / "checkpoints" / "model.keras").exists()
    assert (run / "workers" / "worker_1" / "checkpoints" / "model.keras").exists()
