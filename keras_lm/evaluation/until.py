"""Greedy generation from text prompts, cut at the first stop string."""

import numpy as np

from keras_lm.evaluation import text
from keras_lm.evaluation.loglikelihood import (
    MIN_WIDTH,
    _next_power_of_two,
    _window,
)
from keras_lm.generation.generate import generate
from keras_lm.layers.validation import check_positive_int


def generate_until(
    model,
    tokenizer,
    contexts,
    *,
    until=(),
    max_new_tokens=32,
    batch_size=8,
    add_start_token=True,
    max_length=None,
    jit_compile=True,
):
    """Continue each context greedily; return the new text up to a stop string.

    Generation stops at EOS or after `max_new_tokens`; the decoded new text
    is then cut before the first occurrence of any string of `until`. A
    context too long for `max_length - max_new_tokens` keeps its last ids.
    Prompts are padded to power-of-two widths and a fixed batch size, so a
    task compiles a few decoding loops, not one per prompt.

    Args:
        model: a `TransformerLM`.
        tokenizer: its keras_lm tokenizer.
        contexts: prompt strings.
        until: a stop string or a list of them (none: stop at EOS only).
        max_new_tokens: most tokens generated per context.
        batch_size: contexts decoded together.
        add_start_token: start each prompt with the start-of-text id.
        max_length: the window (prompt + new tokens); defaults to the
            model's `max_sequence_length`.
        jit_compile: compile the decoding loop with XLA / jax.jit.

    Returns:
        A list of strings, the new text of each context, in order.

    Example:
    >>> generate_until(model, tokenizer, ["Q: 2 + 2?\\nA:"], until=["\\n"])
    """
    special_ids = text.check_tokenizer(tokenizer, model, "generate_until")
    stops = _check_until(until)
    check_positive_int("max_new_tokens", max_new_tokens)
    check_positive_int("batch_size", batch_size)
    window = _window(model, max_length)
    room = window - max_new_tokens
    if room < 1:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the "
            f"window max_length={window}."
        )
    contexts = list(contexts)
    if not contexts:
        return []
    prefix = [special_ids.text_start_id] if add_start_token else []
    prompts = []
    for index, ids in enumerate(text.tokenize(tokenizer, contexts)):
        ids = prefix + ids
        if not ids:
            raise ValueError(
                f"Context {index} ({contexts[index]!r}) has no tokens to continue. "
                "Use add_start_token=True or give a context."
            )
        prompts.append(ids[-room:])
    new_ids = _generate(
        model, prompts, max_new_tokens, batch_size, special_ids, room, jit_compile
    )
    bodies = [p[1:] if add_start_token else p for p in prompts]
    texts = _new_text(tokenizer, bodies, new_ids)
    return [_cut(t, stops) for t in texts]


def _generate(
    model, prompts, max_new_tokens, batch_size, special_ids, room, jit_compile
):
    """New ids of each prompt (at most `room` ids), up to (without) its EOS."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    batch = min(batch_size, _next_power_of_two(len(prompts)))
    fill = 0 if special_ids.fill_id is None else special_ids.fill_id
    results = [None] * len(prompts)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        longest = max(len(prompts[i]) for i in chunk)
        width = min(room, max(MIN_WIDTH, _next_power_of_two(longest)))
        ids = np.full((batch, width), fill, "int32")
        mask = np.zeros((batch, width), bool)
        ids[:, 0] = prompts[chunk[0]][0]  # filler rows of a short last batch
        mask[:, 0] = True
        for slot, i in enumerate(chunk):
            ids[slot] = fill
            ids[slot, : len(prompts[i])] = prompts[i]
            mask[slot] = False
            mask[slot, : len(prompts[i])] = True
        outputs = generate(
            model,
            ids,
            method="greedy",
            max_new_tokens=max_new_tokens,
            padding_mask=mask,
            jit_compile=jit_compile,
        )
        for slot, i in enumerate(chunk):
            new = [int(t) for t in outputs[slot, len(prompts[i]) :][:max_new_tokens]]
            if special_ids.eos_id in new:
                new = new[: new.index(special_ids.eos_id)]
            results[i] = new
    return results


def _new_text(tokenizer, prompts, new_ids):
    """The text the new ids add to each prompt's text. Decoded together with
    the prompt, so a tokenizer that drops a word's leading space when it
    decodes it alone (SentencePiece) keeps it."""
    wholes = text.detokenize(tokenizer, [p + n for p, n in zip(prompts, new_ids)])
    heads = text.detokenize(tokenizer, prompts)
    alone = text.detokenize(tokenizer, new_ids)
    return [
        whole[len(head) :] if whole.startswith(head) else own
        for whole, head, own in zip(wholes, heads, alone)
    ]


def _cut(generated, stops):
    ends = [generated.find(stop) for stop in stops]
    ends = [end for end in ends if end >= 0]
    return generated[: min(ends)] if ends else generated


def _check_until(until):
    stops = [until] if isinstance(until, str) else list(until or ())
    bad = [s for s in stops if not isinstance(s, str) or not s]
    if bad:
        raise ValueError(f"until must be non-empty strings. Received: until={until!r}")
    return stops
