"""Structured pruning: fewer feed-forward units and fewer blocks, measured
by importance, giving a smaller dense model with a plain config.

Notation: B batch, T length, D width, F feed-forward units per block.

The models' configs hold one `intermediate_dim` for every block and a
count of blocks per stack, so pruning keeps F' = F (1 - ffn_sparsity) units
in every block (each block keeps its own most important ones) and drops
whole blocks. Attention heads are not pruned: a block's head size is
`hidden_dim / num_heads`, so a model with fewer heads of the same size has
no config.

Importance (Molchanov et al., 2019):
- a feed-forward unit j: the first-order (Taylor) estimate of the loss
  change when its output row W_out[j, :] is zeroed, which removes the unit
  exactly: (sum_d W_out[j, d] dL/dW_out[j, d])^2, averaged over batches;
- a block: the measured loss increase on the same batches when the block is
  removed (the model rebuilt without it).
"""

import keras
import numpy as np

from keras_lm.layers.validation import check_positive_int

# (attribute holding the blocks, config key counting them) per model kind.
_STACKS = {
    "TransformerSeq2Seq": (
        ("encoder_blocks", "num_encoder_layers"),
        ("decoder_blocks", "num_decoder_layers"),
    ),
    "TransformerLM": (("blocks", "num_layers"),),
}
# Feed-forward variables sliced along F: layer name -> axis of F.
_FFN_AXES = {
    "ffn_intermediate/kernel": 1,  # [D, F]
    "ffn_intermediate/bias": 0,  # [F]
    "ffn_gate/kernel": 1,  # [D, F]
    "ffn_gate/bias": 0,  # [F]
    "ffn_output/kernel": 0,  # [F, D]
}


def _stacks(model):
    name = type(model).__name__
    for cls in type(model).__mro__:
        if cls.__name__ in _STACKS:
            return _STACKS[cls.__name__]
    raise ValueError(
        "Pruning expects a keras_lm TransformerSeq2Seq or TransformerLM. "
        f"Received: {name}"
    )


def _check_prunable(model):
    stacks = _stacks(model)
    from keras_lm.compression.quantize import quantized_layers

    if quantized_layers(model):
        raise ValueError(
            "Cannot prune a quantized model: prune (and fine-tune) the float "
            "model first, then quantize it."
        )
    return stacks


def _batch_loss(model, batch):
    """Mean token cross-entropy of one `(inputs, labels[, weights])` batch."""
    inputs, labels = batch[0], batch[1]
    weights = batch[2] if len(batch) > 2 else None
    logits = model(inputs, training=False)
    losses = keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True
    )  # [B, T]
    if weights is None:
        return keras.ops.mean(losses)
    weights = keras.ops.cast(weights, losses.dtype)
    return keras.ops.sum(losses * weights) / keras.ops.maximum(
        keras.ops.sum(weights), 1.0
    )


def _take(batches, num_batches):
    taken = []
    for batch in batches:
        if len(taken) == num_batches:
            break
        taken.append(tuple(batch))
    if not taken:
        raise ValueError("measure_importance needs at least one batch; got none.")
    return taken


def measure_importance(model, batches, num_batches=8, layers=True):
    """Importance of every feed-forward unit and (optionally) every block.

    Args:
        model: a float `TransformerSeq2Seq` or `TransformerLM`.
        batches: an iterable (e.g. `keras_lm.data.make_translation_dataset`)
            of `(inputs, labels)` or `(inputs, labels, sample_weight)`.
        num_batches: batches read from `batches`, > 0.
        layers: also measure each block's loss increase when removed (one
            rebuilt model and pass over the batches per block).

    Returns:
        `{"ffn": {block name: float array [F]}, "layers": {block name:
        loss increase}, "loss": loss of the unpruned model}` (higher is more
        important); `"layers"` is empty when `layers=False`.
    """
    import tensorflow as tf

    stacks = _check_prunable(model)
    check_positive_int("num_batches", num_batches)
    taken = _take(batches, num_batches)
    blocks = [b for attribute, _ in stacks for b in getattr(model, attribute)]
    kernels = [b.ffn_output.kernel for b in blocks]
    scores = [np.zeros(k.shape[0], "float64") for k in kernels]
    base = 0.0
    for batch in taken:
        with tf.GradientTape() as tape:
            loss = _batch_loss(model, batch)
        grads = tape.gradient(loss, [k.value for k in kernels])
        base += float(loss) / len(taken)
        for score, kernel, grad in zip(scores, kernels, grads):
            contribution = np.sum(np.asarray(kernel) * np.asarray(grad), axis=1)
            score += contribution.astype("float64") ** 2 / len(taken)
    ffn = {block.name: score for block, score in zip(blocks, scores)}
    layer_scores = {}
    if layers:
        for attribute, _ in stacks:
            for block in getattr(model, attribute):
                smaller = _rebuild(model, drop={block.name})
                loss = np.mean([float(_batch_loss(smaller, b)) for b in taken])
                layer_scores[block.name] = float(loss) - base
    return {"ffn": ffn, "layers": layer_scores, "loss": base}


def prune(
    model,
    importance=None,
    ffn_sparsity=0.0,
    drop_encoder_layers=0,
    drop_decoder_layers=0,
    drop_layers=0,
):
    """A smaller dense copy of `model` with the least important parts removed.

    The copy has the same class and a config with a smaller
    `intermediate_dim` and fewer blocks, so it saves, loads, decodes and
    exports like any model; fine-tune it briefly afterwards. `model` is left
    unchanged. With nothing to remove, the copy computes exactly what
    `model` does.

    Args:
        model: a float `TransformerSeq2Seq` or `TransformerLM`.
        importance: what `measure_importance` returned for `model`; needed
            when anything is removed.
        ffn_sparsity: fraction of feed-forward units removed from every
            block, in [0, 1); F' = F - round(F * ffn_sparsity) >= 1.
        drop_encoder_layers: encoder blocks removed (TransformerSeq2Seq).
        drop_decoder_layers: decoder blocks removed (TransformerSeq2Seq).
        drop_layers: blocks removed (TransformerLM).

    Returns:
        The pruned model.

    Example:
    >>> importance = keras_lm.compression.measure_importance(model, train_data)
    >>> smaller = keras_lm.compression.prune(
    ...     model, importance, ffn_sparsity=0.5, drop_decoder_layers=1)
    """
    stacks = _check_prunable(model)
    if isinstance(ffn_sparsity, bool) or not isinstance(ffn_sparsity, (int, float)):
        raise ValueError(
            f"ffn_sparsity must be a number in [0, 1). Received: {ffn_sparsity!r}"
        )
    if not 0.0 <= ffn_sparsity < 1.0:
        raise ValueError(
            f"ffn_sparsity must be in [0, 1). Received: ffn_sparsity={ffn_sparsity}"
        )
    units = model.intermediate_dim
    kept_units = units - int(round(units * ffn_sparsity))
    if kept_units < 1:
        raise ValueError(
            f"ffn_sparsity={ffn_sparsity} would leave no feed-forward unit of "
            f"intermediate_dim={units}. Use a smaller ffn_sparsity."
        )
    drops = {
        "num_encoder_layers": ("drop_encoder_layers", drop_encoder_layers),
        "num_decoder_layers": ("drop_decoder_layers", drop_decoder_layers),
        "num_layers": ("drop_layers", drop_layers),
    }
    counts = {key for _, key in stacks}
    for key, (argument, value) in drops.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"{argument} must be a non-negative integer. Received: "
                f"{argument}={value!r}"
            )
        if key not in counts and value:
            raise ValueError(
                f"{argument} does not apply to a {type(model).__name__}. "
                f"Received: {argument}={value}"
            )
        if key in counts and value >= getattr(model, key):
            raise ValueError(
                f"{argument}={value} would leave no block of {key}="
                f"{getattr(model, key)}. Keep at least one."
            )
    removes_something = kept_units < units or any(v for _, v in drops.values())
    if removes_something:
        _check_importance(
            importance, model, stacks, need_layers=any(v for _, v in drops.values())
        )
    drop = set()
    for attribute, key in stacks:
        count = drops[key][1]
        if count:
            blocks = getattr(model, attribute)
            ranked = sorted(blocks, key=lambda b: importance["layers"][b.name])
            drop.update(b.name for b in ranked[:count])
    keep_units = None
    if kept_units < units:
        keep_units = {
            name: np.sort(np.argsort(-np.asarray(score), kind="stable")[:kept_units])
            for name, score in importance["ffn"].items()
        }
    return _rebuild(model, drop=drop, keep_units=keep_units, units=kept_units)


def _check_importance(importance, model, stacks, need_layers):
    if not isinstance(importance, dict) or "ffn" not in importance:
        raise ValueError(
            "Pass importance=keras_lm.compression.measure_importance(model, "
            f"batches) to remove anything. Received: importance={importance!r:.80}"
        )
    names = [b.name for attribute, _ in stacks for b in getattr(model, attribute)]
    missing = [n for n in names if n not in importance["ffn"]]
    if need_layers:
        missing += [n for n in names if n not in importance.get("layers", {})]
    if missing:
        raise ValueError(
            f"importance has no score for blocks {sorted(set(missing))}: it was "
            "measured on another model (or with layers=False while removing "
            "blocks). Measure it on this model."
        )


def _rebuild(model, drop=(), keep_units=None, units=None):
    """The model rebuilt without the blocks in `drop`, and with only the
    feed-forward units `keep_units[block name]` (`units` of them)."""
    stacks = _stacks(model)
    config = model.get_config()
    kept_blocks = []  # (old block, new index) per stack
    for attribute, key in stacks:
        kept = [b for b in getattr(model, attribute) if b.name not in drop]
        config[key] = len(kept)
        kept_blocks.append(kept)
    if units is not None:
        config["intermediate_dim"] = units
    smaller = type(model).from_config(config)
    old_block_vars = set()
    for (attribute, _), kept in zip(stacks, kept_blocks):
        for new_block, old_block in zip(getattr(smaller, attribute), kept):
            old_block_vars.update(id(v) for v in old_block.weights)
            _copy_block(new_block, old_block, (keep_units or {}).get(old_block.name))
    for attribute, _ in stacks:
        for block in getattr(model, attribute):
            old_block_vars.update(id(v) for v in block.weights)
    new_block_vars = {
        id(v)
        for attribute, _ in stacks
        for block in getattr(smaller, attribute)
        for v in block.weights
    }
    old_rest = {v.path: v for v in model.weights if id(v) not in old_block_vars}
    for variable in smaller.weights:
        if id(variable) not in new_block_vars:
            variable.assign(old_rest[variable.path])
    return smaller


def _copy_block(new_block, old_block, keep):
    old = {_relative(v, old_block): v for v in old_block.weights}
    for variable in new_block.weights:
        name = _relative(variable, new_block)
        value = np.asarray(old[name])
        if keep is not None and name in _FFN_AXES:
            value = np.take(value, keep, axis=_FFN_AXES[name])
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Cannot copy {old_block.name}/{name} of shape {value.shape} "
                f"into shape {tuple(variable.shape)}."
            )
        variable.assign(value)


def _relative(variable, block):
    """`ffn_output/kernel` from `.../decoder_block_1/ffn_output/kernel`."""
    return variable.path.split(f"{block.name}/", 1)[1]
