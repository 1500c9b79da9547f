import json
import logging
import os
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from keras_lm import distribute


class FakeTPUResolver(tf.distribute.cluster_resolver.ClusterResolver):
    """A cluster resolver that reports a remote TPU with `cores` cores."""

    def __init__(self, cores=8, error=None):
        self.cores = cores
        self.error = error

    def cluster_spec(self):
        return tf.train.ClusterSpec({"worker": ["10.0.0.2:8470"]})

    def master(self, task_type=None, task_id=None, rpc_layer=None):
        return "grpc://10.0.0.2:8470"

    def num_accelerators(self, task_type=None, task_id=None, config_proto=None):
        if self.error:
            raise self.error
        return {"TPU": self.cores}


@pytest.fixture
def no_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)


@pytest.fixture
def tpu_calls(monkeypatch):
    """Records the TPU connection calls instead of reaching a TPU."""
    calls = []
    fake_strategy = mock.create_autospec(tf.distribute.TPUStrategy, instance=True)
    fake_strategy.num_replicas_in_sync = 8

    def record(name, result=None):
        def call(resolver):
            calls.append((name, resolver))
            return result

        return call

    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", record("connect"))
    monkeypatch.setattr(
        tf.tpu.experimental, "initialize_tpu_system", record("initialize")
    )
    monkeypatch.setattr(
        tf.distribute, "TPUStrategy", record("TPUStrategy", fake_strategy)
    )
    return SimpleNamespace(calls=calls, strategy=fake_strategy)


def test_auto_picks_tpu_from_a_resolver_that_reports_cores(
    no_cluster, tpu_calls, caplog
):
    resolver = FakeTPUResolver(cores=8)
    with caplog.at_level(logging.INFO, logger="keras_lm"):
        strategy = distribute.get_strategy("auto", cluster_resolver=resolver)
    assert strategy is tpu_calls.strategy
    assert tpu_calls.calls == [
        ("connect", resolver),
        ("initialize", resolver),
        ("TPUStrategy", resolver),
    ]
    assert "8 TPU core(s)" in caplog.text


@pytest.mark.parametrize(
    "resolver",
    [FakeTPUResolver(cores=0), FakeTPUResolver(error=RuntimeError("unreachable"))],
)
def test_auto_falls_back_when_the_resolver_has_no_tpu(
    no_cluster, tpu_calls, caplog, resolver
):
    with caplog.at_level(logging.INFO, logger="keras_lm"):
        strategy = distribute.get_strategy("auto", cluster_resolver=resolver)
    assert strategy is tf.distribute.get_strategy()
    assert tpu_calls.calls == []
    assert "no TPU is reachable" in caplog.text
    with pytest.raises(ValueError, match="kind='tpu' but no TPU is reachable"):
        distribute.get_strategy("tpu", cluster_resolver=resolver)


def test_explicit_tpu_kind_uses_the_resolver(tpu_calls):
    resolver = FakeTPUResolver(cores=4)
    assert distribute.get_strategy("tpu", cluster_resolver=resolver) is (
        tpu_calls.strategy
    )


def test_auto_without_tpu_or_cluster_is_the_default_strategy(no_cluster, caplog):
    with caplog.at_level(logging.INFO, logger="keras_lm"):
        strategy = distribute.get_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert "no TPU, no multi-worker TF_CONFIG" in caplog.text


def _tf_config(workers, index=0):
    return json.dumps(
        {
            "cluster": {"worker": [f"localhost:{2000 + i}" for i in range(workers)]},
            "task": {"type": "worker", "index": index},
        }
    )


def test_auto_picks_multi_worker_from_tf_config(no_cluster, monkeypatch, caplog):
    # The real constructor would join the cluster; the two-worker run in
    # tests/training/test_distributed_training.py exercises it for real.
    created = SimpleNamespace(num_replicas_in_sync=2)
    constructor = mock.Mock(return_value=created)
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", constructor)
    monkeypatch.setenv("TF_CONFIG", _tf_config(workers=2))
    with caplog.at_level(logging.INFO, logger="keras_lm"):
        assert distribute.get_strategy("auto") is created
    assert "TF_CONFIG lists 2 workers" in caplog.text

    monkeypatch.setenv("TF_CONFIG", _tf_config(workers=1))
    assert distribute.get_strategy("auto") is tf.distribute.get_strategy()
    assert constructor.call_count == 1


def test_explicit_multi_worker_passes_the_resolver(monkeypatch):
    constructor = mock.Mock(return_value=SimpleNamespace(num_replicas_in_sync=1))
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", constructor)
    resolver = FakeTPUResolver()
    distribute.get_strategy("multi_worker", cluster_resolver=resolver)
    constructor.assert_called_once_with(cluster_resolver=resolver)


def test_bad_tf_config_is_named(no_cluster, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.get_strategy("auto")


def test_local_kinds():
    one = distribute.get_strategy("one_device")
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    mirrored = distribute.get_strategy("mirrored", devices=["/cpu:0"])
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()


def test_unknown_kind_is_named():
    with pytest.raises(ValueError, match="kind='gpu'"):
        distribute.get_strategy("gpu")


def _fake_strategy(replicas, devices=("/cpu:0",)):
    return SimpleNamespace(
        num_replicas_in_sync=replicas,
        extended=SimpleNamespace(worker_devices=tuple(devices)),
    )


def test_batch_size_helpers():
    strategy = _fake_strategy(4)
    assert distribute.global_batch_size(8, strategy) == 32
    assert distribute.per_replica_batch_size(32, strategy) == 8
    with pytest.raises(ValueError, match="global_batch_size=30 .* multiple of 4"):
        distribute.per_replica_batch_size(30, strategy)


def test_supports_xla():
    assert distribute.supports_xla(_fake_strategy(1))
    assert not distribute.supports_xla(_fake_strategy(2, ["/cpu:0", "/cpu:1"]))
    assert distribute.supports_xla(_fake_strategy(2, ["/gpu:0", "/gpu:1"]))


def _multi_worker(task_type, task_id, jobs):
    strategy = mock.create_autospec(
        tf.distribute.MultiWorkerMirroredStrategy, instance=True
    )
    strategy.cluster_resolver = SimpleNamespace(
        task_type=task_type,
        task_id=task_id,
        cluster_spec=lambda: tf.train.ClusterSpec(jobs),
    )
    return strategy


def test_chief_and_task_names():
    workers = {"worker": ["a:1", "b:1"]}
    with_chief = {"chief": ["c:1"], "worker": ["a:1"]}
    assert distribute.is_chief(tf.distribute.get_strategy())
    assert distribute.is_chief(_multi_worker("worker", 0, workers))
    assert distribute.task_name(_multi_worker("worker", 1, workers)) == "worker_1"
    assert distribute.is_chief(_multi_worker("chief", 0, with_chief))
    assert not distribute.is_chief(_multi_worker("worker", 0, with_chief))
    assert (
        distribute.output_dir_for("run", _multi_worker("chief", 0, with_chief)) == "run"
    )
    second = _multi_worker("worker", 1, workers)
    assert distribute.output_dir_for("run", second) == os.path.join(
        "run", "workers", "worker_1"
    )


def test_sum_over_replicas_is_identity_with_one_replica():
    value = tf.constant(3.0)
    assert float(distribute.sum_over_replicas(value)) == 3.0
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    result = strategy.run(distribute.sum_over_replicas, args=(value,))
    assert float(result) == 3.0


def _ragged_translation_data():
    """10 examples of varying lengths, batched by 4 with a remainder of 2."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(10):
        source = rng.integers(1, 9, rng.integers(2, 7)).astype("int32")
        target = rng.integers(1, 9, rng.integers(2, 11)).astype("int32")
        rows.append((source, target))

    def generate():
        for source, target in rows:
            inputs = {"encoder_token_ids": source, "decoder_token_ids": target}
            yield inputs, target, np.ones_like(target, "float32")

    spec = tf.TensorSpec([None], tf.int32)
    signature = (
        {"encoder_token_ids": spec, "decoder_token_ids": spec},
        spec,
        tf.TensorSpec([None], tf.float32),
    )
    data = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return rows, data.padded_batch(4)


def test_tpu_data_has_only_static_shapes():
    rows, data = _ragged_translation_data()
    tpu = mock.create_autospec(tf.distribute.TPUStrategy, instance=True)
    static = distribute.prepare_dataset(
        data, tpu, global_batch_size=4, sequence_length=8
    )
    for spec in tf.nest.flatten(static.element_spec):
        assert spec.shape.is_fully_defined(), spec
    batches = list(static.as_numpy_iterator())
    assert len(batches) == 2  # the remainder of 2 is dropped
    for inputs, labels, weights in batches:
        assert inputs["encoder_token_ids"].shape == (4, 8)
        assert labels.shape == weights.shape == (4, 8)
    inputs, labels, weights = batches[0]
    source, target = rows[0]
    np.testing.assert_array_equal(
        inputs["encoder_token_ids"][0], np.pad(source, (0, 8 - len(source)))
    )
    kept = min(len(target), 8)  # longer targets are truncated
    np.testing.assert_array_equal(labels[0][:kept], target[:kept])
    assert not labels[0][kept:].any() and not weights[0][kept:].any()


def test_static_shapes_need_a_length_and_a_batch_size():
    _, data = _ragged_translation_data()
    tpu = mock.create_autospec(tf.distribute.TPUStrategy, instance=True)
    with pytest.raises(ValueError, match="decoder_token_ids.*sequence_length="):
        distribute.prepare_dataset(data, tpu, global_batch_size=4)
    with pytest.raises(ValueError, match="global_batch_size="):
        distribute.prepare_dataset(data, tpu, sequence_length=8)


def test_other_strategies_keep_the_data():
    _, data = _ragged_translation_data()
    assert distribute.prepare_dataset(data, tf.distribute.get_strategy()) is data
