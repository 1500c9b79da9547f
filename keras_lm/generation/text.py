"""Translate lists of strings: tokenize, batch, beam search, detokenize.

Batches are padded to a fixed batch size and to source widths rounded up to a
multiple of `width_multiple`, so translating a test set compiles a handful of
decoding loops instead of one per distinct length. Sources are encoded by
`keras_lm.tokenizers.encoding.encode_sources`, as in training and export.
"""

import numpy as np

from keras_lm.generation.generate import MODEL_DEFAULT, generate
from keras_lm.special_ids import special_ids_of


def check_same_special_ids(tokenizer, model):
    """Raise `ValueError` unless tokenizer and model agree on special ids.

    Returns the model's `SpecialIds`.
    """
    ours, theirs = special_ids_of(model), special_ids_of(tokenizer)
    fields = ("pad_id", "eos_id", "start_id", "text_start_id")
    differ = [f for f in fields if getattr(ours, f) != getattr(theirs, f)]
    if differ:
        raise ValueError(
            f"The tokenizer and the model disagree on {differ}: tokenizer "
            f"{theirs}, model {ours}. Build the model with "
            "special_ids=tokenizer.special_ids."
        )
    return ours


def encode_sources(tokenizer, texts, max_source_length, special_ids=None):
    """Token id lists: each source truncated to `max_source_length` with EOS."""
    from keras_lm.tokenizers.encoding import encode_sources as encode

    special_ids = special_ids or tokenizer.special_ids
    ids = encode(tokenizer.tokenize(list(texts)), special_ids, max_source_length)
    return ids.to_list()


def encode_prompts(tokenizer, texts, max_prompt_length=None, special_ids=None):
    """Token id lists for decoder-only prompts: the start-of-text id, then the
    text's ids (its last `max_prompt_length - 1` when it is longer)."""
    from keras_lm.tokenizers.encoding import encode_prompts as encode

    special_ids = special_ids or tokenizer.special_ids
    ids = encode(tokenizer.tokenize(list(texts)), special_ids, max_prompt_length)
    return ids.to_list()


def translate_ids(
    model,
    tokenizer,
    texts,
    num_beams=None,
    length_penalty=None,
    max_source_length=None,
    source_length_ratio=1.5,
    source_length_offset=10,
    batch_size=32,
    width_multiple=16,
    length_penalty_mode=MODEL_DEFAULT,
    early_stopping=MODEL_DEFAULT,
):
    """Translate strings to lists of target ids (without start, EOS or padding).

    Args:
        model: a `TransformerSeq2Seq`.
        tokenizer: its `SentencePieceTokenizer` (the same special ids).
        texts: source strings.
        num_beams: beam width; 1 decodes greedily. Defaults to the model's
            `generation_config` (a converted checkpoint's), else 4.
        length_penalty: alpha for beam search; defaults to the model's
            `generation_config`, else 0.6 (GNMT's).
        max_source_length: source tokens kept, EOS included; defaults to the
            model's `max_sequence_length`. Longer sources are truncated.
        source_length_ratio, source_length_offset: a translation has at most
            `ceil(ratio * source_tokens + offset)` tokens.
        batch_size: sentences decoded together.
        width_multiple: source widths are padded up to a multiple of this.
        length_penalty_mode, early_stopping: beam scoring, as in `generate`
            ("gnmt", keras_lm's default, or "hf", transformers' and
            CTranslate2's score / |Y|^alpha); default the model's
            `generation_config`, else "gnmt".

    Returns:
        A list with one list of ids per text, in the order given.
    """
    special_ids = check_same_special_ids(tokenizer, model)
    config = getattr(model, "generation_config", None) or {}
    if num_beams is None:
        beam = config.get("method", "beam") == "beam"
        num_beams = config.get("num_beams", 4) if beam else 1
    if length_penalty is None:
        length_penalty = config.get("length_penalty", 0.6)
    texts = list(texts)
    if not texts:
        return []
    max_source_length = max_source_length or model.max_sequence_length
    sources = encode_sources(tokenizer, texts, max_source_length, special_ids)
    order = np.argsort([len(s) for s in sources], kind="stable")
    results = [None] * len(texts)
    pad = special_ids.pad_id
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        longest = max(len(sources[i]) for i in rows)
        width = min(max_source_length, -(-longest // width_multiple) * width_multiple)
        ids = np.full((batch_size, width), pad, "int32")
        ids[:, 0] = special_ids.eos_id  # filler rows for a short last batch
        for slot, i in enumerate(rows):
            ids[slot, :] = pad
            ids[slot, : len(sources[i])] = sources[i]
        outputs = generate(
            model,
            ids,
            method="beam" if num_beams > 1 else "greedy",
            num_beams=num_beams,
            length_penalty=length_penalty,
            length_penalty_mode=length_penalty_mode,
            early_stopping=early_stopping,
            source_length_ratio=source_length_ratio,
            source_length_offset=source_length_offset,
        )
        for slot, i in enumerate(rows):
            results[i] = _strip(outputs[slot], special_ids)
    return results


def _strip(row, special_ids):
    """[start, t1, ..., EOS, fill, ...] -> [t1, ...]."""
    ends = {special_ids.eos_id, special_ids.pad_id} - {None}
    ids = []
    for token in row[1:]:
        if int(token) in ends:
            break
        ids.append(int(token))
    return ids


def translate_texts(model, tokenizer, texts, **options):
    """Translate strings to strings; options as in `translate_ids`."""
    import tensorflow as tf

    translated = translate_ids(model, tokenizer, texts, **options)
    if not translated:
        return []
    flat = [token for ids in translated for token in ids]
    ragged = tf.RaggedTensor.from_row_lengths(
        tf.constant(flat, tf.int32, shape=[len(flat)]),
        [len(ids) for ids in translated],
    )
    return [t.decode("utf-8") for t in tokenizer.detokenize(ragged).numpy()]
