"""Plots written as PNG files: training curves and attention heat maps.

Uses matplotlib's non-interactive Agg backend, so it works without a display.
"""

import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(history, path, title="Training"):
    """Write training and validation loss per epoch (or per logged step).

    Args:
        history: a `keras.callbacks.History` or its `.history` dict; every key
            ending in "loss" is drawn.
        path: output PNG path.
        title: figure title.

    Returns:
        `path`.
    """
    curves = getattr(history, "history", history)
    losses = {k: v for k, v in curves.items() if k.endswith("loss") and len(v)}
    if not losses:
        raise ValueError(
            f"No loss values to plot. Received history keys: {sorted(curves)}"
        )
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, values in sorted(losses.items()):
        axis.plot(np.arange(1, len(values) + 1), values, marker="o", label=name)
    axis.xaxis.set_major_locator(_integer_ticks())
    axis.set_xlabel("epoch")
    axis.set_ylabel("loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(figure, plt, path)


def plot_attention(scores, source_tokens, target_tokens, path, title="Attention"):
    """Write a heat map of attention probabilities [T, S] (heads averaged).

    Args:
        scores: [N, T, S] or [T, S] probabilities.
        source_tokens: S labels for the columns.
        target_tokens: T labels for the rows.
        path: output PNG path.
        title: figure title.

    Returns:
        `path`.
    """
    scores = np.asarray(scores, dtype="float32")
    if scores.ndim == 3:
        scores = scores.mean(axis=0)
    if scores.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(
            f"scores has shape {scores.shape}, but there are {len(target_tokens)} "
            f"target and {len(source_tokens)} source labels."
        )
    plt = _pyplot()
    width = max(4.0, 0.45 * len(source_tokens) + 1.5)
    height = max(3.0, 0.4 * len(target_tokens) + 1.5)
    figure, axis = plt.subplots(figsize=(width, height))
    image = axis.imshow(scores, cmap="viridis", aspect="auto", vmin=0.0)
    axis.set_xticks(range(len(source_tokens)), source_tokens, rotation=90)
    axis.set_yticks(range(len(target_tokens)), target_tokens)
    axis.set_xlabel("source")
    axis.set_ylabel("target")
    axis.set_title(title)
    figure.colorbar(image, ax=axis)
    return _save(figure, plt, path)


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _save(figure, plt, path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
