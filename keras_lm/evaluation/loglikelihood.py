"""Exact log-likelihood of token continuations, batched and compiled.

Notation: B batch, T padded width, V vocabulary.

A request is `(context_ids, continuation_ids)`. Its tokens are
`context + continuation`; the last `max_length + 1` of them are kept (a
context too long for the window loses its start, the ids next to the
continuation matter most), the model reads all but the last, and the
continuation's ids are the labels of the row's last positions. That is
lm-evaluation-harness's layout, so scores compare with its `hf` backend.

Rows are right-padded (causal attention keeps the padding from reaching real
positions) to a few bucketed shapes: widths are powers of two up to the
window and the batch size is fixed per call, so scoring a task compiles one
forward pass per width instead of one per batch.
"""

import warnings

import numpy as np
from keras import ops

from keras_lm.generation import compiled
from keras_lm.layers.validation import check_ids_in_vocabulary, check_positive_int
from keras_lm.special_ids import SpecialIds

MIN_WIDTH = 8


class LoglikelihoodResults(list):
    """`(logprob, is_greedy)` per request, in request order.

    Attributes:
        truncated: for each request, how many context ids were cut from its
            left to fit the window (0 for most).
    """

    def __init__(self, results, truncated):
        super().__init__(results)
        self.truncated = list(truncated)


def loglikelihood_ids(
    model, requests, *, batch_size=32, max_length=None, jit_compile=True
):
    """Log-likelihood of each continuation given its context, in token ids.

    Equals the sum of the log-softmax of one full forward pass over the
    request's ids at the continuation's positions, whatever the batch it is
    scored in, its padding or the batch size.

    Args:
        model: a `TransformerLM` (anything called as `model({"token_ids"})`
            returning logits [B, T, V], with `max_sequence_length` and
            `vocabulary_size`).
        requests: `(context_ids, continuation_ids)` pairs of int lists. A
            context must hold at least one id: a text's context starts with
            the start-of-text id (`model.special_ids.text_start_id`, as
            `keras_lm.evaluation.loglikelihood` writes it).
        batch_size: rows per forward pass.
        max_length: the window in tokens; defaults to the model's
            `max_sequence_length`. Longer requests lose context ids from the
            left (counted in the result's `truncated`, and warned about).
        jit_compile: compile the forward pass with XLA / jax.jit.

    Returns:
        A `LoglikelihoodResults`: a list of `(logprob: float, is_greedy:
        bool)`, where `is_greedy` says every continuation id is the model's
        argmax at its position; `.truncated` gives the ids cut per request.

    Example:
    >>> loglikelihood_ids(model, [([2, 17, 5], [9, 4]), ([2], [30])])
    [(-7.31..., False), (-4.02..., False)]
    """
    check_positive_int("batch_size", batch_size)
    window = _window(model, max_length)
    rows, truncated = [], []
    for index, request in enumerate(requests):
        tokens, num_scored = _request_tokens(index, request, window)
        cut = max(0, len(tokens) - (window + 1))
        rows.append((tokens[cut:], num_scored))
        truncated.append(cut)
    if not rows:
        return LoglikelihoodResults([], [])
    check_ids_in_vocabulary(
        "request token ids",
        np.concatenate([np.asarray(tokens, "int64") for tokens, _ in rows]),
        model.vocabulary_size,
    )
    cut_rows = [i for i, cut in enumerate(truncated) if cut]
    if cut_rows:
        warnings.warn(
            f"{len(cut_rows)} of {len(rows)} requests are longer than the window "
            f"(max_length={window}); their contexts lost ids from the left (request "
            f"{cut_rows[0]}: {truncated[cut_rows[0]]} ids). See .truncated.",
            stacklevel=2,
        )
    results = score_rows(model, rows, batch_size, window, jit_compile)
    return LoglikelihoodResults(results, truncated)


def score_rows(model, rows, batch_size, window, jit_compile=True):
    """`(logprob, is_greedy)` of each `(tokens, num_scored)`: the last
    `num_scored` tokens are scored given the ones before (at most
    `window + 1` tokens per row)."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))
    batch = min(batch_size, _next_power_of_two(len(rows)))
    fill = _fill_id(model)
    results = [None] * len(rows)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        longest = max(len(rows[i][0]) - 1 for i in chunk)
        width = min(window, max(MIN_WIDTH, _next_power_of_two(longest)))
        token_ids = np.full((batch, width), fill, "int32")
        labels = np.full((batch, width), fill, "int32")
        for slot, i in enumerate(chunk):
            tokens = rows[i][0]
            token_ids[slot, : len(tokens) - 1] = tokens[:-1]
            labels[slot, : len(tokens) - 1] = tokens[1:]
        function = compiled.get_function(
            model,
            ("loglikelihood", batch, width),
            lambda: _build_scorer(model),
            jit_compile=jit_compile,
        )
        log_probs, greedy = (
            ops.convert_to_numpy(x) for x in function(token_ids, labels)
        )
        for slot, i in enumerate(chunk):
            tokens, num_scored = rows[i]
            end = len(tokens) - 1
            span = slice(end - num_scored, end)
            results[i] = (
                float(log_probs[slot, span].astype("float64").sum()),
                bool(greedy[slot, span].all()),
            )
    return results


def _build_scorer(model):
    def score(token_ids, labels):
        logits = ops.cast(model({"token_ids": token_ids}, training=False), "float32")
        # log-softmax at the labels only: no second [B, T, V] tensor.
        label_logits = ops.take_along_axis(
            logits, ops.expand_dims(labels, -1), axis=-1
        )[..., 0]  # [B, T]
        label_log_probs = label_logits - ops.logsumexp(logits, axis=-1)  # [B, T]
        greedy = ops.equal(ops.argmax(logits, axis=-1), labels)  # [B, T]
        return label_log_probs, greedy

    return score


def _request_tokens(index, request, window):
    """`(context + continuation, len(continuation))` of a checked request."""
    try:
        context, continuation = request
    except (TypeError, ValueError):
        raise ValueError(
            f"Request {index} must be a (context_ids, continuation_ids) pair. "
            f"Received: {request!r}"
        ) from None
    context = _id_list("context", index, context)
    continuation = _id_list("continuation", index, continuation)
    if not continuation:
        raise ValueError(
            f"Request {index} has an empty continuation: there is nothing to "
            f"score. Received: continuation={continuation!r}"
        )
    if not context:
        raise ValueError(
            f"Request {index} has a context with no tokens. Received: "
            f"context={context!r}. Start the context with the start-of-text id "
            "(model.special_ids.text_start_id), as "
            "keras_lm.evaluation.loglikelihood does for text."
        )
    if len(continuation) > window:
        raise ValueError(
            f"Request {index} has a continuation of {len(continuation)} ids, "
            f"more than the window max_length={window} can score."
        )
    return context + continuation, len(continuation)


def _id_list(name, index, ids):
    values = np.asarray(ids)
    if values.ndim != 1 or (
        values.size and not np.issubdtype(values.dtype, np.integer)
    ):
        raise ValueError(
            f"Request {index}: {name} must be a list of integer token ids. "
            f"Received: {name}={ids!r}"
        )
    return [int(i) for i in values]


def _window(model, max_length):
    limit = model.max_sequence_length
    if max_length is None:
        return limit
    check_positive_int("max_length", max_length)
    if max_length > limit:
        raise ValueError(
            f"max_length={max_length} is longer than the model's "
            f"max_sequence_length={limit}."
        )
    return max_length


def _fill_id(model):
    """Any valid id fills padding (causal attention ignores it)."""
    fill = SpecialIds.from_value(getattr(model, "special_ids", None)).fill_id
    return 0 if fill is None else fill


def _next_power_of_two(n):
    return 1 << max(0, int(n) - 1).bit_length()
