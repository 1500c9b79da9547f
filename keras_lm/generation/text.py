"""Translate lists of strings: tokenize, batch, beam search, detokenize.

Batches are padded to a fixed batch size and to source widths rounded up to a
multiple of `width_multiple`, so translating a test set compiles a handful of
decoding loops instead of one per distinct length.
"""

import numpy as np

from keras_lm.generation.generate import generate


def encode_sources(tokenizer, texts, max_source_length):
    """Token id lists: each source truncated to `max_source_length` with EOS."""
    pieces = tokenizer.tokenize(list(texts)).to_list()
    return [row[: max_source_length - 1] + [tokenizer.eos_id] for row in pieces]


def translate_ids(
    model,
    tokenizer,
    texts,
    num_beams=4,
    length_penalty=0.6,
    max_source_length=None,
    source_length_ratio=1.5,
    source_length_offset=10,
    batch_size=32,
    width_multiple=16,
):
    """Translate strings to lists of target ids (without BOS, EOS or padding).

    Args:
        model: a `TransformerSeq2Seq`.
        tokenizer: its `SentencePieceTokenizer`.
        texts: source strings.
        num_beams: beam width; 1 decodes greedily.
        length_penalty: GNMT alpha for beam search.
        max_source_length: source tokens kept, EOS included; defaults to the
            model's `max_sequence_length`. Longer sources are truncated.
        source_length_ratio, source_length_offset: a translation has at most
            `ceil(ratio * source_tokens + offset)` tokens.
        batch_size: sentences decoded together.
        width_multiple: source widths are padded up to a multiple of this.

    Returns:
        A list with one list of ids per text, in the order given.
    """
    texts = list(texts)
    if not texts:
        return []
    max_source_length = max_source_length or model.max_sequence_length
    sources = encode_sources(tokenizer, texts, max_source_length)
    order = np.argsort([len(s) for s in sources], kind="stable")
    results = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        longest = max(len(sources[i]) for i in rows)
        width = min(max_source_length, -(-longest // width_multiple) * width_multiple)
        ids = np.zeros((batch_size, width), "int32")
        ids[:, 0] = tokenizer.eos_id  # filler rows for a short last batch
        for slot, i in enumerate(rows):
            ids[slot, :] = 0
            ids[slot, : len(sources[i])] = sources[i]
        outputs = generate(
            model,
            ids,
            method="beam" if num_beams > 1 else "greedy",
            num_beams=num_beams,
            length_penalty=length_penalty,
            eos_id=tokenizer.eos_id,
            bos_id=tokenizer.bos_id,
            source_length_ratio=source_length_ratio,
            source_length_offset=source_length_offset,
        )
        for slot, i in enumerate(rows):
            results[i] = _strip(outputs[slot], tokenizer)
    return results


def _strip(row, tokenizer):
    """[BOS, t1, ..., EOS, 0, ...] -> [t1, ...]."""
    ids = []
    for token in row[1:]:
        if token in (tokenizer.eos_id, 0):
            break
        ids.append(int(token))
    return ids


def translate_texts(model, tokenizer, texts, **options):
    """Translate strings to strings; options as in `translate_ids`."""
    translated = translate_ids(model, tokenizer, texts, **options)
    if not translated:
        return []
    width = max([len(ids) for ids in translated] + [1])
    dense = np.zeros((len(translated), width), "int32")
    for row, ids in enumerate(translated):
        dense[row, : len(ids)] = ids
    return [t.decode("utf-8") for t in tokenizer.detokenize(dense).numpy()]
