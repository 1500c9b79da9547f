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
"""

import keras
from keras import ops

# The smallest stage; batches of at most this many rows never shrink.
MIN_ROWS = 4


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


def _take_rows(structure, indices):
    return keras.tree.map_structure(
        lambda tensor: ops.take(tensor, indices, axis=0), structure
    )


def run(index, rows, beam_rows, width, length, step, done, results):
    """Run `step` until every row is done or `length` is reached, dropping
    done rows between stages.

    Args:
        index: the scalar step the loop starts from.
        rows: a structure of [B, ...] tensors, one entry per row; must hold
            `row_ids`, [B] int32 positions in the output (`arange(B)`).
        beam_rows: a structure of [B * W, ...] tensors (caches, the encoder
            state), row b's beams at b * W ... b * W + W - 1.
        width: W, a static int.
        length: the step index where the loop stops in any case.
        step: `(index, rows, beam_rows) -> (index, rows, beam_rows)`.
        done: `(index, rows) -> [B] bool`, rows whose result is final.
        results: `(index, rows) -> structure of [B, ...]`, each row's output.

    Returns:
        The `results` structure for all B rows, in their original order.
    """

    def stage_cond(next_size):
        def cond(index, rows, beam_rows):
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
    outputs = None
    for stage, size in enumerate(sizes):
        next_size = sizes[stage + 1] if stage + 1 < len(sizes) else None
        index, rows, beam_rows = ops.while_loop(
            stage_cond(next_size), step, (index, rows, beam_rows)
        )
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
        beam_rows = _take_rows(beam_rows, beams)
