"""Choosing a `tf.distribute` strategy, and shaping data for it.

`get_strategy("auto")` picks, in order: a TPU when one is named or visible, a
multi-worker strategy when `TF_CONFIG` lists more than one worker, a mirrored
strategy over several local GPUs, and the default strategy otherwise. It logs
its choice and the reason on the "keras_lm" logger.
"""

import json
import logging
import os

import keras
import tensorflow as tf

logger = logging.getLogger("keras_lm")

KINDS = ("auto", "tpu", "multi_worker", "mirrored", "one_device", "default")


def get_strategy(kind="auto", tpu=None, cluster_resolver=None, devices=None):
    """Returns a `tf.distribute.Strategy` of the requested kind.

    Multi-worker and TPU strategies must be created at program start, before
    TensorFlow runs any op, and before the model and data are built.

    Args:
        kind: one of "auto", "tpu", "multi_worker", "mirrored", "one_device",
            "default".
        tpu: optional TPU name or address for `TPUClusterResolver`
            ("local" on a TPU VM).
        cluster_resolver: optional cluster resolver to use instead of one
            built here: a `TPUClusterResolver` for "tpu" (and "auto"), or a
            resolver describing the workers for "multi_worker".
        devices: optional device names for "mirrored" and "one_device".

    Returns:
        The strategy. Enter `strategy.scope()` to build models in it.

    Example:
    ```python
    strategy = keras_lm.distribute.get_strategy("auto")
    with strategy.scope():
        model = build_model()
    ```
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown strategy kind: kind={kind!r}. Use one of {KINDS}.")
    if kind == "tpu":
        resolver = (
            cluster_resolver
            or tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        )
        found, reason = _tpu_available(resolver)
        if not found:
            raise ValueError(
                f"kind='tpu' but no TPU is reachable ({reason}). Pass tpu=NAME "
                "(or 'local' on a TPU VM), or use kind='auto'."
            )
        return _chosen(_connect_tpu(resolver), f"kind='tpu'; {reason}")
    if kind == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=cluster_resolver
        )
        return _chosen(strategy, "kind='multi_worker'")
    if kind == "mirrored":
        return _chosen(
            tf.distribute.MirroredStrategy(devices=devices), "kind='mirrored'"
        )
    if kind == "one_device":
        device = devices[0] if devices else _first_device()
        return _chosen(tf.distribute.OneDeviceStrategy(device), "kind='one_device'")
    if kind == "default":
        return _chosen(tf.distribute.get_strategy(), "kind='default'")
    return _auto(tpu, cluster_resolver)


def _auto(tpu, cluster_resolver):
    resolver, hint = _tpu_resolver_from_hints(tpu, cluster_resolver)
    if resolver is not None:
        found, reason = _tpu_available(resolver)
        if found:
            return _chosen(_connect_tpu(resolver), f"auto: {hint}; {reason}")
        logger.warning("auto: %s but no TPU is reachable (%s).", hint, reason)
    workers = _tf_config_workers()
    if workers > 1:
        return _chosen(
            tf.distribute.MultiWorkerMirroredStrategy(),
            f"auto: TF_CONFIG lists {workers} workers",
        )
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return _chosen(
            tf.distribute.MirroredStrategy(), f"auto: {len(gpus)} local GPUs"
        )
    return _chosen(
        tf.distribute.get_strategy(),
        f"auto: no TPU, no multi-worker TF_CONFIG, {len(gpus)} GPU(s)",
    )


def _chosen(strategy, reason):
    logger.info(
        "Using %s with %d replica(s): %s",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        reason,
    )
    return strategy


def _tpu_resolver_from_hints(tpu, cluster_resolver):
    """A TPU resolver when something names a TPU, without probing the network."""
    if cluster_resolver is not None:
        return cluster_resolver, "a cluster_resolver was given"
    if tpu is not None:
        hint = f"tpu={tpu!r} was given"
    elif os.environ.get("TPU_NAME"):
        hint = "$TPU_NAME is set"
    elif tf.config.list_physical_devices("TPU"):
        tpu, hint = "local", "a local TPU device is visible"
    else:
        return None, None
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu), hint
    except (ValueError, RuntimeError) as error:
        logger.warning("auto: %s but no TPU resolver: %s", hint, error)
        return None, None


def _tpu_available(resolver):
    try:
        count = resolver.num_accelerators().get("TPU", 0)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        return False, f"the resolver failed: {error}"
    return count > 0, f"the resolver reports {count} TPU core(s)"


def _connect_tpu(resolver):
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _tf_config_workers():
    config = os.environ.get("TF_CONFIG")
    if not config:
        return 0
    try:
        cluster = json.loads(config).get("cluster", {})
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG is not valid JSON ({error}). Received: TF_CONFIG={config!r}"
        ) from error
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _first_device():
    return "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"


def is_multi_worker(strategy):
    """Whether `strategy` is a `MultiWorkerMirroredStrategy`."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def needs_static_shapes(strategy):
    """Whether `strategy` (TPU) needs fully static batch shapes."""
    return isinstance(strategy, tf.distribute.TPUStrategy)


def supports_xla(strategy):
    """Whether `model.fit` may XLA-compile its step under `strategy`.

    XLA on CPU cannot reach a variable replica that lives on another CPU
    device, so several CPU replicas (logical CPUs, CPU-only multi-worker) run
    without it; one replica or accelerator replicas keep it.
    """
    if strategy.num_replicas_in_sync == 1:
        return True
    devices = strategy.extended.worker_devices
    return not any("CPU" in tf.DeviceSpec.from_string(d).device_type for d in devices)


def is_chief(strategy):
    """Whether this process is the one that writes shared files.

    True outside multi-worker training; under it, for the "chief" task, or for
    worker 0 when the cluster has no chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not is_multi_worker(strategy) or resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def task_name(strategy):
    """ "chief", or "TYPE_ID" (e.g. "worker_1") for other multi-worker tasks."""
    if is_chief(strategy):
        return "chief"
    resolver = strategy.cluster_resolver
    return f"{resolver.task_type}_{resolver.task_id}"


def output_dir_for(output_dir, strategy):
    """Where this process writes: `output_dir` for the chief (and outside
    multi-worker training), `output_dir/workers/<task>` for other workers.

    Under multi-worker training every worker runs the same program; giving
    the others their own directory keeps them from overwriting the chief's
    files (checkpoints, exports, results).
    """
    if is_chief(strategy):
        return output_dir
    return os.path.join(output_dir, "workers", task_name(strategy))


def sum_over_replicas(value):
    """Sums `value` over all replicas (all workers) inside a replica context.

    The identity in cross-replica context or with a single replica. Every
    replica must call it at the same point of the step.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def global_batch_size(per_replica_batch_size, strategy):
    """Batch size the dataset must yield so each replica gets `per_replica`.

    Example:
    ```python
    batch = keras_lm.distribute.global_batch_size(64, strategy)
    ```
    """
    return per_replica_batch_size * strategy.num_replicas_in_sync


def per_replica_batch_size(global_batch_size, strategy):
    """Examples each replica gets from a global batch; it must divide evenly."""
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(
            f"global_batch_size={global_batch_size} does not split evenly over "
            f"{replicas} replicas. Use a multiple of {replicas}."
        )
    return global_batch_size // replicas


def static_batches(dataset, batch_size, sequence_length=None):
    """Rebatches `dataset` so every element has a fully static shape.

    XLA on TPU compiles one program per input shape, and a last, smaller batch
    or a new length would recompile it or fail. The dataset is unbatched, every
    dimension unknown in its `element_spec` (other than the batch) is padded
    with 0 (the pad id, and weight 0) up to `sequence_length`, longer examples
    are truncated to it, and batches are formed with `drop_remainder=True`.

    Args:
        dataset: batched `tf.data.Dataset` of (nested) tensors, batch first.
        batch_size: int, the global batch size of the output.
        sequence_length: int, length for the dimensions that are not static.
            Needed only when some are not.

    Returns:
        The dataset, unchanged when its shapes are already fully static.

    Example:
    ```python
    data = keras_lm.distribute.static_batches(data, batch_size=64,
                                              sequence_length=128)
    ```
    """
    spec = dataset.element_spec
    flat = keras.tree.flatten(spec)
    if all(s.shape.is_fully_defined() and s.shape[0] == batch_size for s in flat):
        return dataset
    example_shapes = []
    for path, s in keras.tree.flatten_with_path(spec):
        path = "/".join(str(key) for key in path)
        dims = s.shape.as_list()[1:]
        if None in dims and sequence_length is None:
            raise ValueError(
                f"Element {path!r} has shape {s.shape}, not static. Pass "
                "sequence_length=... to pad it, or pad it in the data pipeline."
            )
        example_shapes.append([sequence_length if d is None else d for d in dims])

    def truncate(*tensors):
        return tuple(
            t[tuple(slice(0, d) for d in shape)] if shape else t
            for t, shape in zip(tensors, example_shapes)
        )

    examples = dataset.unbatch().map(
        lambda *e: truncate(*keras.tree.flatten(e)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    batched = examples.padded_batch(
        batch_size, padded_shapes=tuple(example_shapes), drop_remainder=True
    )
    return batched.map(
        lambda *flat_batch: keras.tree.pack_sequence_as(spec, list(flat_batch)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)


def prepare_dataset(dataset, strategy, global_batch_size=None, sequence_length=None):
    """Makes `dataset` fit `strategy`: static shapes for TPU, unchanged otherwise.

    Args:
        dataset: batched `tf.data.Dataset` yielding global batches.
        strategy: the `tf.distribute.Strategy` that will consume it.
        global_batch_size: batch size for `static_batches`; defaults to the
            static batch dimension of the dataset when it has one.
        sequence_length: passed to `static_batches`.

    Returns:
        The dataset to give to `model.fit` or `keras_lm.training.train`.
    """
    if not needs_static_shapes(strategy):
        return dataset
    if global_batch_size is None:
        global_batch_size = keras.tree.flatten(dataset.element_spec)[0].shape[0]
        if global_batch_size is None:
            raise ValueError(
                f"{type(strategy).__name__} needs static batch shapes but the "
                "dataset's batch size is unknown. Pass global_batch_size=... or "
                "batch with drop_remainder=True."
            )
    return static_batches(
        dataset, batch_size=global_batch_size, sequence_length=sequence_length
    )
