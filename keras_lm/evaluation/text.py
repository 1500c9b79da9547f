"""Text in, token ids out for the evaluation requests.

A context and its continuation are split as lm-evaluation-harness splits
them for causal models, so scores compare with its backends: whitespace at
the end of the context moves to the start of the continuation, the two are
tokenized together, and the continuation is what follows the context's own
tokens. A context starts with the start-of-text id
(`special_ids.text_start_id`), keras_lm's convention for decoder-only texts.
"""

import numpy as np

from keras_lm.generation.text import check_same_special_ids


def check_tokenizer(tokenizer, model, what):
    """The model's `SpecialIds`, once the tokenizer is there and agrees."""
    if tokenizer is None:
        raise ValueError(
            f"{what} needs the model's tokenizer to turn text into ids. Received: "
            "tokenizer=None. Pass the keras_lm tokenizer the model was trained "
            "with (e.g. SentencePieceTokenizer('spm.model')), or token ids to "
            "the *_ids functions."
        )
    if not hasattr(tokenizer, "tokenize"):
        raise ValueError(
            f"{what} needs a keras_lm tokenizer (with tokenize/detokenize). "
            f"Received: tokenizer of type {type(tokenizer).__name__}"
        )
    return check_same_special_ids(tokenizer, model)


def tokenize(tokenizer, texts):
    """Lists of ids, one per text (no special ids added)."""
    texts = [_check_text("text", i, t) for i, t in enumerate(texts)]
    if not texts:
        return []
    return [list(map(int, ids)) for ids in tokenizer.tokenize(texts).to_list()]


def detokenize(tokenizer, id_lists):
    """One string per list of ids."""
    import tensorflow as tf

    if not id_lists:
        return []
    flat = [token for ids in id_lists for token in ids]
    ragged = tf.RaggedTensor.from_row_lengths(
        tf.constant(flat, tf.int32, shape=[len(flat)]),
        [len(ids) for ids in id_lists],
    )
    return [t.decode("utf-8") for t in tokenizer.detokenize(ragged).numpy()]


def split_trailing_space(context, continuation):
    """lm-evaluation-harness's split: the context's trailing whitespace
    starts the continuation."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        return context[:-spaces], context[-spaces:] + continuation
    return context, continuation


def encode_pairs(tokenizer, pairs, start_id):
    """`(context_ids, continuation_ids)` per `(context, continuation)` text.

    Args:
        tokenizer: a keras_lm tokenizer.
        pairs: `(context: str, continuation: str)` pairs.
        start_id: the id each context starts with, or None for none (then an
            empty context gives a request with no context ids, which
            `loglikelihood_ids` refuses).

    Raises:
        ValueError: naming the pair whose continuation is empty or has no
            tokens.
    """
    contexts, continuations = [], []
    for index, pair in enumerate(pairs):
        context, continuation = _check_pair(index, pair)
        context, continuation = split_trailing_space(context, continuation)
        contexts.append(context)
        continuations.append(continuation)
    wholes = tokenize(tokenizer, [c + k for c, k in zip(contexts, continuations)])
    context_ids = tokenize(tokenizer, contexts)
    alone = tokenize(tokenizer, continuations)
    prefix = [] if start_id is None else [start_id]
    encoded = []
    for index, (context, whole, own, single) in enumerate(
        zip(contexts, wholes, context_ids, alone)
    ):
        continuation_ids = whole[len(own) :] if context else single
        if not prefix + own:
            raise ValueError(
                f"Request {index}: the context {context!r} has no tokens, so "
                "nothing conditions the continuation. Start contexts with the "
                "start-of-text id (add_start_token=True) or give a context."
            )
        if not continuation_ids:
            raise ValueError(
                f"Request {index}: the continuation {continuations[index]!r} has no "
                f"tokens after the context {context!r}: there is nothing to score."
            )
        encoded.append((prefix + own, continuation_ids))
    return encoded


def _check_pair(index, pair):
    try:
        context, continuation = pair
    except (TypeError, ValueError):
        raise ValueError(
            f"Request {index} must be a (context, continuation) pair of strings. "
            f"Received: {pair!r}"
        ) from None
    context = _check_text("context", index, context)
    continuation = _check_text("continuation", index, continuation)
    if not continuation:
        raise ValueError(
            f"Request {index} has an empty continuation: there is nothing to "
            f"score. Received: context={context!r}, continuation={continuation!r}"
        )
    return context, continuation


def _check_text(name, index, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, (str, np.str_)):
        raise ValueError(
            f"Request {index}: {name} must be a string. Received: {name}={text!r}"
        )
    return str(text)
