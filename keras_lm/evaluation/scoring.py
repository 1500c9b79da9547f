"""Scores of text: continuation log-likelihood, multiple choice, perplexity.

Each function tokenizes with the model's keras_lm tokenizer (see `text.py`
for how a context and continuation are split) and scores with
`loglikelihood_ids`, one compiled forward pass per bucketed shape.
"""

import math

import numpy as np

from keras_lm.evaluation import text
from keras_lm.evaluation.loglikelihood import _id_list, _window, loglikelihood_ids
from keras_lm.layers.validation import check_positive_int


def loglikelihood(
    model, tokenizer, requests, *, add_start_token=True, batch_size=32, **options
):
    """Log-likelihood of each continuation text given its context text.

    Args:
        model: a `TransformerLM`.
        tokenizer: its keras_lm tokenizer (the same special ids).
        requests: `(context: str, continuation: str)` pairs. Word-separating
            spaces belong to the continuation (`("The cat", " sat")`);
            trailing spaces of a context are moved there.
        add_start_token: start each context with the start-of-text id (the
            keras_lm convention); with False an empty context is an error.
        batch_size, **options: as for `loglikelihood_ids` (`max_length`,
            `jit_compile`).

    Returns:
        A `LoglikelihoodResults`: `(logprob, is_greedy)` per request, with
        `.truncated`.

    Example:
    >>> loglikelihood(model, tokenizer, [("The cat", " sat"), ("", "Hello")])
    """
    special_ids = text.check_tokenizer(tokenizer, model, "loglikelihood")
    start_id = special_ids.text_start_id if add_start_token else None
    encoded = text.encode_pairs(tokenizer, list(requests), start_id)
    return loglikelihood_ids(model, encoded, batch_size=batch_size, **options)


def multiple_choice(
    model,
    tokenizer,
    items,
    *,
    target_delimiter=" ",
    add_start_token=True,
    batch_size=32,
    **options,
):
    """Accuracy of picking each item's answer by log-likelihood.

    As lm-evaluation-harness scores `multiple_choice` tasks: each choice,
    after `target_delimiter`, is a continuation of the context; the
    prediction is the most likely choice ("acc"), or the most likely per
    character of the choice ("acc_norm", lm-eval's length normalisation).

    Args:
        model, tokenizer: as for `loglikelihood`.
        items: dicts `{"context": str, "choices": [str, ...], "answer": int}`.
        target_delimiter: put between the context and each choice.
        add_start_token, batch_size, **options: as for `loglikelihood`.

    Returns:
        A dict: "acc", "acc_norm" (floats in [0, 1]), "predictions",
        "predictions_norm" (chosen index per item) and "loglikelihoods" (one
        list per item, one float per choice).

    Example:
    >>> multiple_choice(model, tokenizer, [
    ...     {"context": "2 + 2 =", "choices": ["4", "5"], "answer": 0}])["acc"]
    """
    items = [_check_item(index, item) for index, item in enumerate(items)]
    if not items:
        raise ValueError("multiple_choice needs at least one item. Received none.")
    requests = [
        (item["context"], target_delimiter + choice)
        for item in items
        for choice in item["choices"]
    ]
    results = loglikelihood(
        model,
        tokenizer,
        requests,
        add_start_token=add_start_token,
        batch_size=batch_size,
        **options,
    )
    scores, predictions, predictions_norm = [], [], []
    position = 0
    for item in items:
        count = len(item["choices"])
        item_scores = [logprob for logprob, _ in results[position : position + count]]
        position += count
        lengths = np.array([len(choice) for choice in item["choices"]], "float64")
        scores.append(item_scores)
        predictions.append(int(np.argmax(item_scores)))
        predictions_norm.append(int(np.argmax(np.array(item_scores) / lengths)))
    answers = np.array([item["answer"] for item in items])
    return {
        "acc": float(np.mean(np.array(predictions) == answers)),
        "acc_norm": float(np.mean(np.array(predictions_norm) == answers)),
        "predictions": predictions,
        "predictions_norm": predictions_norm,
        "loglikelihoods": scores,
    }


def rolling_loglikelihood(
    model, tokenizer, documents, *, stride=None, max_length=None, batch_size=32
):
    """Log-likelihood of each whole document, scored in sliding windows.

    A document's ids follow the start-of-text id; every id is scored exactly
    once. The first window scores the first `max_length` ids; each next one
    moves by `stride` ids and scores those, reading the `max_length -
    stride` ids before them as context (the last window reads a full window
    of context). `stride=max_length` (the default) gives
    lm-evaluation-harness's `loglikelihood_rolling` windows; a document that
    fits one window gets its full-context log-likelihood whatever the stride.

    Args:
        model: a `TransformerLM`.
        tokenizer: its keras_lm tokenizer, or None when `documents` are
            lists of ids.
        documents: strings, or id lists (without the start-of-text id).
        stride: ids scored per window after the first, in [1, max_length].
        max_length: the window; defaults to `model.max_sequence_length`.
        batch_size: windows per forward pass.

    Returns:
        A list of floats, one per document (0.0 for an empty one).

    Example:
    >>> rolling_loglikelihood(model, tokenizer, ["A long text ..."], stride=64)
    """
    documents = list(documents)
    token_lists, start_id = _document_ids(model, tokenizer, documents)
    window = _window(model, max_length)
    if stride is None:
        stride = window
    check_positive_int("stride", stride)
    if stride > window:
        raise ValueError(
            f"stride must be at most the window max_length={window}. "
            f"Received: stride={stride}"
        )
    requests, owners = [], []
    for index, tokens in enumerate(token_lists):
        for request in rolling_windows(tokens, start_id, window, stride):
            requests.append(request)
            owners.append(index)
    results = loglikelihood_ids(
        model, requests, batch_size=batch_size, max_length=window
    )
    totals = [0.0] * len(token_lists)
    for owner, (logprob, _) in zip(owners, results):
        totals[owner] += logprob
    return totals


def perplexity(model, tokenizer, documents, **options):
    """Corpus perplexity `exp(-sum log-likelihood / ids scored)` of documents
    scored by `rolling_loglikelihood` (same options).

    Returns:
        A dict: "perplexity", "loglikelihood" (the sum), "tokens" and
        "documents".
    """
    documents = list(documents)
    token_lists, _ = _document_ids(model, tokenizer, documents)
    tokens = sum(len(ids) for ids in token_lists)
    if not tokens:
        raise ValueError(
            f"perplexity needs at least one token. Received {len(documents)} "
            "documents with no tokens."
        )
    total = sum(rolling_loglikelihood(model, None, token_lists, **options))
    return {
        "perplexity": math.exp(-total / tokens),
        "loglikelihood": total,
        "tokens": tokens,
        "documents": len(documents),
    }


def rolling_windows(tokens, start_id, window, stride):
    """`(context_ids, continuation_ids)` requests that score each of `tokens`
    once, after `start_id`, in windows of at most `window` model inputs."""
    sequence = [start_id] + list(tokens)
    requests = []
    scored = 0  # positions 1..scored of `sequence` are scored
    while scored < len(tokens):
        end = min(len(tokens), window if scored == 0 else scored + stride)
        begin = max(0, end - window)
        requests.append((sequence[begin : scored + 1], sequence[scored + 1 : end + 1]))
        scored = end
    return requests


def _document_ids(model, tokenizer, documents):
    """(id lists, start id) of documents given as text or as ids."""
    from keras_lm.special_ids import SpecialIds

    if tokenizer is None:
        if any(isinstance(d, (str, bytes)) for d in documents):
            raise ValueError(
                "Documents given as text need the model's tokenizer. Received: "
                "tokenizer=None; pass it, or documents as lists of token ids."
            )
        special_ids = SpecialIds.from_value(getattr(model, "special_ids", None))
        token_lists = [_id_list("document", i, d) for i, d in enumerate(documents)]
    else:
        special_ids = text.check_tokenizer(tokenizer, model, "rolling_loglikelihood")
        token_lists = text.tokenize(tokenizer, documents)
    start_id = special_ids.text_start_id
    if start_id is None:
        raise ValueError(
            "Scoring a document from its first token needs a start-of-text id "
            f"(bos_id or eos_id); the model has none: {special_ids}."
        )
    return token_lists, start_id


def _check_item(index, item):
    if not isinstance(item, dict):
        raise ValueError(
            f"Item {index} must be a dict with 'context', 'choices' and 'answer'. "
            f"Received: {item!r}"
        )
    missing = [key for key in ("context", "choices", "answer") if key not in item]
    if missing:
        raise ValueError(
            f"Item {index} lacks {missing}. Expected keys 'context', 'choices', "
            f"'answer'; received {sorted(item)}."
        )
    choices = item["choices"]
    if isinstance(choices, str) or not choices:
        raise ValueError(
            f"Item {index}: choices must be a non-empty list of strings. "
            f"Received: choices={choices!r}"
        )
    empty = [i for i, choice in enumerate(choices) if not choice]
    if empty:
        raise ValueError(
            f"Item {index}: choice {empty[0]} is empty. Received: choices={choices!r}"
        )
    answer = item["answer"]
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer)):
        raise ValueError(
            f"Item {index}: answer must be the index of the right choice. "
            f"Received: answer={answer!r}"
        )
    if not 0 <= answer < len(choices):
        raise ValueError(
            f"Item {index}: answer={answer} is not a choice index in "
            f"[0, {len(choices)})."
        )
    return {"context": item["context"], "choices": list(choices), "answer": int(answer)}
