"""Decode in stages of fewer rows: rows that are done leave the batch.

Notation: B rows, W beams per row (rows of the cache: B * W).

A compiled loop has static shapes, so a batch keeps paying for every row
until its last one ends: each decoder layer, the output projection, the
softmax and the cache reorder run over all B * W cache rows at every step.
Sentences of one batch end at different steps (a batch waits for its longest
translation), so most of that work is for rows already done.

`run` splits the loop into stages of B, B/2, B/4, ... rows. A stage runs
while more rows are undone than the next stage holds; then every row's result
is written to the output at its original position, the undone rows (and, to
fill the stage, the first done ones) are gathered in their original order,
and the next, smaller loop carries on from the same step. A done row's result
never changes again (it is frozen), so writing it when it leaves is the same
as writing it at the end, and rows never interact, so which rows share a
batch changes nothing but float round-off in batched matmuls.

Each stage is its own copy of the loop body in the compiled program, so
compiling takes longer with more stages; the smallest stage holds `MIN_ROWS`
rows. Measured on the translation example's `small` model (batches of 32
sentences, beam 4, BENCHMARKS.md "Serving"): 1.5x the target tokens per
second of one stage, for about twice the compile time.

The cache grows too (`capacities`, `grow`). A step's self-attention and the
beam search's cache reorder read and write every slot of a [B * W, K, L, H]
buffer, written or not, so the first stage runs over `FIRST_CAPACITY` slots,
then twice that, ... up to 3/4 of L, then the full L: one loop per capacity,
each ending when its slots are full or when the next row stage can hold the
undone rows (so rows leave as early as without growth). Growing copies the
cache once per capacity; the zeros added are slots no step has written yet,
which causality hides, so no output changes. Greedy and sampling decoding
(`decode_loop`) grow the same way. Measured on the `small` model (1000
sentences, interleaved in one process): 1.19x the speed of the full-length
loop, identical outputs, warm-up 25 -> 30 s. Models opt in with
`resize_cache(cache, max_length)`.
"""

import keras
from keras import ops

# The smallest stage; batches of at most this many rows never shrink.
MIN_ROWS = 4
# The first growth stage's cache slots; each next stage doubles them.
FIRST_CAPACITY = 16


def stage_sizes(rows, min_rows=None):
    """[B, B/2 rounded up, ...] down to `min_rows` (`MIN_ROWS`), or [B] if B
    is no larger.

    Only a static B can shrink: with an unknown batch size (a graph traced
    for any batch) there is one stage.
    """
    min_rows = MIN_ROWS if min_rows is None else min_rows
    if not isinstance(rows, int):
        return [rows]
    sizes = [rows]
    while sizes[-1] > min_rows:
        sizes.append(max(min_rows, (sizes[-1] + 1) // 2))
    return sizes


def capacities(filled, length, first=None):
    """Static cache lengths of the growth stages, then `length` (the full
    buffer): `first`, 2 * `first`, ... up to 3/4 of `length`, skipping those
    that cannot hold the `filled` slots (a prompt's prefill) and one more.
    """
    first = FIRST_CAPACITY if first is None else first
    sizes, capacity = [], first
    # A stage must save a quarter of the buffer to pay for its copy.
    while 4 * capacity <= 3 * length:
        if capacity > filled:
            sizes.append(capacity)
        capacity *= 2
    return sizes + [length]


def grow(index, carry, step, keep_going, growth, cache_at):
    """Run `step` over a cache that grows through `growth`'s capacities.

    Args:
        index: the scalar step the loop starts from; step `index` writes the
            cache slot `index - 1`.
        carry: the loop state after `index`, a tuple holding the cache at
            position `cache_at`.
        step: `(index, *carry) -> (index, *carry)`.
        keep_going: `(index, *carry) -> bool`, the loop's own condition.
        growth: `(capacities, resize_cache)`, see `capacities` and the
            model's `resize_cache(cache, max_length)`; or None (no growth).
        cache_at: the cache's position in `carry`.

    Returns:
        `(index, carry)` after the last growth stage, with the cache resized
        to the last capacity, the full one, for the caller's own loop.
    """
    if growth is None:
        return index, carry
    sizes, resize_cache = growth

    def resize(carry, capacity):
        carry = list(carry)
        carry[cache_at] = resize_cache(carry[cache_at], capacity)
        return tuple(carry)

    for capacity in sizes[:-1]:

        def cond(index, *carry, capacity=capacity):
            return ops.logical_and(index <= capacity, keep_going(index, *carry))

        index, *carry = ops.while_loop(cond, step, (index, *resize(carry, capacity)))
    return index, resize(carry, sizes[-1])


def _take_rows(structure, indices):
    return keras.tree.map_structure(
        lambda tensor: ops.take(tensor, indices, axis=0), structure
    )


def run(
    index, rows, beam_rows, width, length, step, done, results, growth=None, fixed=()
):
    """Run `step` until every row is done or `length` is reached, growing the
    cache (`growth`) and dropping done rows between stages.

    Args:
        index: the scalar step the loop starts from.
        rows: a dict of [B, ...] tensors, one entry per row; must hold
            `row_ids`, [B] int32 positions in the output (`arange(B)`).
        beam_rows: a dict of [B * W, ...] tensors: the cache under `cache`,
            which `step` updates, and what it only reads (the encoder
            state), row b's beams at b * W ... b * W + W - 1.
        width: W, a static int.
        length: the step index where the loop stops in any case.
        step: `(index, rows, beam_rows) -> (index, rows, beam_rows)`.
        done: `(index, rows) -> [B] bool`, rows whose result is final.
        results: `(index, rows) -> structure of [B, ...]`, each row's output.
        growth: None, or `(capacities, resize)`: the cache lengths of the
            growth stages (see `capacities`) and the model's
            `resize_cache(cache, max_length)`.
        fixed: the keys of `rows` that `step` never changes.

    Returns:
        The `results` structure for all B rows, in their original order.
    """
    # What no step changes (`fixed`, `row_ids`, beam rows but the cache) is
    # read by the loops, not carried through them: carried unchanged through
    # three while loops, a constant makes TF 2.21's XLA bridge fail ("Cannot
    # find body function while_2_body_..._const_0"). Held entries are
    # gathered between stages like the carried ones.
    fixed = {"row_ids", *fixed}

    def split(rows, beam_rows):
        held = {key: rows[key] for key in fixed}
        held_beams = {key: v for key, v in beam_rows.items() if key != "cache"}
        carried = {key: v for key, v in rows.items() if key not in fixed}
        return (held, held_beams), (carried, beam_rows["cache"])

    def loop_functions(held, condition):
        rows_held, beams_held = held

        def body(index, carried, cache):
            rows = {**carried, **rows_held}
            index, rows, beam_rows = step(index, rows, {**beams_held, "cache": cache})
            carried = {key: v for key, v in rows.items() if key not in fixed}
            return index, carried, beam_rows["cache"]

        def cond(index, carried, cache):
            return condition(index, {**carried, **rows_held})

        return body, cond

    def stage_cond(next_size):
        def cond(index, rows):
            undone = ops.sum(ops.cast(ops.logical_not(done(index, rows)), "int32"))
            # The last stage runs until no row is left; the others until the
            # next one can hold the undone rows.
            least = 0 if next_size is None else next_size
            return ops.logical_and(index < length, undone > least)

        return cond

    def write(outputs, index, rows):
        ids = rows["row_ids"][:, None]
        return keras.tree.map_structure(
            lambda out, new: ops.scatter_update(out, ids, new),
            outputs,
            results(index, rows),
        )

    sizes = stage_sizes(ops.shape(rows["row_ids"])[0])
    held, (carried, cache) = split(rows, beam_rows)
    body, cond = loop_functions(held, stage_cond(sizes[1] if len(sizes) > 1 else None))
    index, (carried, cache) = grow(
        index, (carried, cache), body, cond, growth, cache_at=1
    )
    outputs = None
    for stage, size in enumerate(sizes):
        next_size = sizes[stage + 1] if stage + 1 < len(sizes) else None
        body, cond = loop_functions(held, stage_cond(next_size))
        index, carried, cache = ops.while_loop(cond, body, (index, carried, cache))
        rows = {**carried, **held[0]}
        if outputs is None:  # the first stage holds every row, in order
            outputs = results(index, rows)
        else:
            outputs = write(outputs, index, rows)
        if next_size is None:
            return outputs
        # Undone rows first, each group in its original order.
        position = ops.arange(size, dtype="float32")
        key = ops.where(done(index, rows), -position - size, -position)
        _, keep = ops.top_k(key, next_size)
        keep = ops.cast(keep, "int32")
        beams = ops.reshape(
            keep[:, None] * width + ops.arange(width, dtype="int32")[None, :], (-1,)
        )
        rows = _take_rows(rows, keep)
        beam_rows = _take_rows({**held[1], "cache": cache}, beams)
        held, (carried, cache) = split(rows, beam_rows)
