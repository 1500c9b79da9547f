"""Where special ids go around token ids: sources, targets, prompts, documents.

One definition used by the data pipelines, `translate_texts` / `generate`
helpers and the exported SavedModels, so they cannot disagree. Each function
takes token ids as a 1-D tensor (one sequence, as inside a `tf.data` map) or a
ragged `[B, None]` tensor (a batch, as from `tokenizer.tokenize(texts)`), and
a `keras_lm.SpecialIds`.

    source (encoder input):  ids[:max_length - 1] + [eos]
    target: decoder input    [start] + ids          cut to max_length
            labels           ids + [eos]            cut to max_length
    prompt (decoder-only):   [text_start] + the last max_length - 1 ids
    document (LM training):  [text_start] + ids + [eos]
                             (no text_start where it equals eos: the previous
                             document's EOS starts this one, as in GPT-2)

A target cut by `max_length` keeps no EOS label: the model must not learn to
stop in the middle of a sentence.
"""

import tensorflow as tf


def encode_sources(ids, special_ids, max_length):
    """Encoder inputs: `ids[:max_length - 1] + [eos]`."""
    _check_length(max_length)
    eos = _column(ids, _require(special_ids, "eos_id"))
    return _concat([_head(ids, max_length - 1), eos])


def encode_targets(ids, special_ids, max_length):
    """`(decoder inputs, labels)`: `[start] + ids` and `ids + [eos]`, both cut
    to `max_length` (a cut target loses its EOS label)."""
    _check_length(max_length)
    start = _column(ids, _require(special_ids, "start_id"))
    eos = _column(ids, _require(special_ids, "eos_id"))
    decoder = _head(_concat([start, ids]), max_length)
    labels = _head(_concat([ids, eos]), max_length)
    return decoder, labels


def encode_prompts(ids, special_ids, max_length=None):
    """Decoder-only prompts: `[text_start] + ids`, keeping the last
    `max_length - 1` ids when the prompt is too long (the most recent context
    matters most for what comes next)."""
    start = _column(ids, _require(special_ids, "text_start_id"))
    if max_length is not None:
        _check_length(max_length)
        ids = _tail(ids, max_length - 1)
    return _concat([start, ids])


def encode_documents(ids, special_ids):
    """Decoder-only training documents: `[text_start] + ids + [eos]`, the
    start left out where it is the EOS id (the previous EOS starts it)."""
    eos_id = _require(special_ids, "eos_id")
    parts = [ids, _column(ids, eos_id)]
    if special_ids.text_start_id != eos_id:
        parts.insert(0, _column(ids, special_ids.text_start_id))
    return _concat(parts)


def target_tokenize(tokenizer):
    """The function that splits target text: `tokenizer.tokenize_target`
    where the tokenizer has one (Marian segments each language with its own
    SentencePiece model), else `tokenizer.tokenize`."""
    return getattr(tokenizer, "tokenize_target", tokenizer.tokenize)


def _require(special_ids, name):
    value = getattr(special_ids, name)
    if value is None:
        raise ValueError(
            f"This encoding needs {name}, but the vocabulary has none: {special_ids}."
        )
    return value


def _check_length(max_length):
    if isinstance(max_length, bool) or not isinstance(max_length, int):
        raise ValueError(
            f"max_length must be an integer >= 2. Received: max_length={max_length!r}"
        )
    if max_length < 2:
        raise ValueError(
            "max_length must be >= 2: one id for the special token, at least one "
            f"for the text. Received: max_length={max_length}"
        )


def _is_batch(ids):
    return isinstance(ids, tf.RaggedTensor)


def _column(ids, value):
    """The id `value` as a [1] tensor, or [B, 1] for a ragged batch."""
    value = tf.constant(value, ids.dtype)
    if _is_batch(ids):
        return tf.fill([ids.nrows(), 1], value)
    return value[tf.newaxis]


def _concat(parts):
    return tf.concat(parts, axis=1 if any(map(_is_batch, parts)) else 0)


def _head(ids, count):
    return ids[:, :count] if _is_batch(ids) else ids[:count]


def _tail(ids, count):
    if count == 0:
        return _head(ids, 0)
    return ids[:, -count:] if _is_batch(ids) else ids[-count:]
