"""One-sequence-per-row decoding (greedy or sampling) over a key/value cache.

Notation: B rows, L buffer length (longest prompt + new tokens), V vocabulary.

The loop runs inside one compiled graph with static shapes: a token buffer
[B, L] holds the right-padded prompts, and step `i` feeds the token at `i - 1`
(writing its keys and values at cache slot `i - 1`) and writes the chosen token
at `i`. Rows whose prompt is longer than the shortest one keep their own prompt
token while `i` is still inside it, so each row sees exactly its prompt followed
by its own tokens, whatever the other rows hold.
"""

from keras import ops

from keras_lm.generation import row_stages, sampling


def read_column(tokens, index):
    """[B, L] buffer -> [B] tokens at `index` (a scalar tensor)."""
    zero = ops.zeros((), "int32")
    column = ops.slice(tokens, [zero, index], [ops.shape(tokens)[0], 1])
    return column[:, 0]


def write_column(tokens, index, column):
    """Write [B] tokens at `index` into the [B, L] buffer."""
    zero = ops.zeros((), "int32")
    return ops.slice_update(tokens, [zero, index], column[:, None])


def forces_eos(inputs, index, in_prompt):
    """[B] whether the token at `index` must be the forced EOS: the row's last
    position, past its prompt, when a forced EOS id is set."""
    at_last = ops.equal(index + 1, inputs["row_limits"])
    return ops.logical_and(
        ops.logical_and(at_last, ops.logical_not(in_prompt)),
        inputs["forced_eos_id"] >= 0,
    )


def decode(step_fn, cache, tokens, inputs, fill, select_fn, context=(), growth=None):
    """Extend every row one token per step until EOS or its length limit.

    Args:
        step_fn: `(token_ids [B, 1], cache, index, context) -> (logits [B, V],
            cache)`, one cached decoder step for the tokens at position
            `index`.
        cache: the model's cache, already filled for positions below
            `min(prompt_lengths) - 1`.
        tokens: [B, L] int32, prompts right-padded, then `fill`.
        inputs: the `decode_inputs` dict: `prompt_lengths` [B] (at least 1),
            `row_limits` [B] (the buffer position where each row must stop),
            `masked_ids` (never generated), `eos_id` and `forced_eos_id` (-1
            for none).
        fill: int32 scalar written after a row's end.
        select_fn: `(logits [B, V], index) -> [B]` int32 next tokens.
        context: what every step reads unchanged (the encoder state).
        growth: None, or the cache's growth stages, `(capacities,
            resize_cache)`: the first steps run over a shorter cache
            (`row_stages.grow`).

    Returns:
        [B, L] int32: prompts, new tokens, then `fill` after EOS or the limit.
    """
    prompt_lengths, row_limits = inputs["prompt_lengths"], inputs["row_limits"]
    rows, length = ops.shape(tokens)
    start = ops.min(prompt_lengths)
    done = ops.zeros((rows,), "bool")

    def keep_going(index, tokens, cache, done):
        return ops.logical_and(index < length, ops.logical_not(ops.all(done)))

    def one_step(index, tokens, cache, done):
        previous = read_column(tokens, index - 1)
        logits, cache = step_fn(previous[:, None], cache, index - 1, context)
        in_prompt = index < prompt_lengths
        logits = sampling.mask_ids(logits, inputs["masked_ids"])
        logits = sampling.force_id(
            logits, inputs["forced_eos_id"], forces_eos(inputs, index, in_prompt)
        )
        chosen = select_fn(logits, index)
        next_tokens = ops.where(
            in_prompt, read_column(tokens, index), ops.where(done, fill, chosen)
        )
        tokens = write_column(tokens, index, next_tokens)
        ended = ops.logical_and(
            ops.logical_not(in_prompt), ops.equal(next_tokens, inputs["eos_id"])
        )
        done = ops.logical_or(done, ended)
        done = ops.logical_or(done, index + 1 >= row_limits)
        return index + 1, tokens, cache, done

    index, carry = row_stages.grow(
        start, (tokens, cache, done), one_step, keep_going, growth, cache_at=1
    )
    _, tokens, _, _ = ops.while_loop(keep_going, one_step, (index, *carry))
    return tokens
