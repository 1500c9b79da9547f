"""Beam search scored as transformers scores it (`length_penalty_mode="hf"`).

Notation: B rows, W beams per row, L buffer length, V vocabulary.

A finished hypothesis Y scores log P(Y | X) / |Y| ** alpha, |Y| counting its
new tokens with the EOS. Each step takes the 2W best one-token extensions of
the alive beams; among them, an EOS extension finishes only if it ranks in the
top W (the other W are a reserve that keeps W beams alive), and at a row's
length limit every one of the top W finishes, cut or not, so length-capped
beams compete with ended ones. Suppressed ids are masked after the
log-softmax, as transformers' logits processors do. A row stops taking
hypotheses when its W finished ones can no longer be beaten, by transformers'
estimate: the best alive beam divided by its current length ** alpha (with
`early_stopping=True`, as soon as it has W finished ones).

GNMT scoring (`beam_search.py`) stays keras_lm's default; this mode exists so
that a converted checkpoint decodes exactly as it does in transformers.
"""

from keras import ops

from keras_lm.generation import row_stages, sampling
from keras_lm.generation.beam_search import (
    _gather_beams,
    _gather_cache,
    _top_candidates,
    _write_column_3d,
    read_column_3d,
)
from keras_lm.generation.decode_loop import forces_eos, read_column

NEGATIVE_INFINITY = sampling.NEGATIVE_INFINITY


def beam_search(
    step_fn,
    cache,
    tokens,
    inputs,
    fill,
    num_beams,
    early_stopping,
    context=(),
    growth=None,
):
    """Search W beams per row; return the W finished ones best first.

    Arguments are those of `beam_search.beam_search`, plus `early_stopping`
    (a static bool, transformers' option of that name).

    Returns:
        `(sequences [B, W, L] int32, scores [B, W] float32)`, best first.
        The cache grows and settled rows leave the loop (`row_stages`),
        which changes no result.
    """
    prompt_lengths, row_limits = inputs["prompt_lengths"], inputs["row_limits"]
    alpha, eos_id = inputs["length_penalty"], inputs["eos_id"]
    num_rows, length = ops.shape(tokens)
    width = num_beams
    alive_tokens = ops.repeat(tokens[:, None, :], width, axis=1)  # [B, W, L]
    first_beam = ops.arange(width, dtype="int32") == 0
    alive_log_probs = ops.where(first_beam, 0.0, NEGATIVE_INFINITY)
    alive_log_probs = ops.repeat(alive_log_probs[None, :], num_rows, axis=0)
    in_top_w = ops.arange(2 * width, dtype="int32")[None, :] < width  # [1, 2W]
    rows = {
        "alive_tokens": alive_tokens,
        "alive_log_probs": alive_log_probs,  # [B, W]
        "fin_tokens": alive_tokens,
        "fin_scores": ops.full((num_rows, width), NEGATIVE_INFINITY, "float32"),
        # No hypothesis can enter any more.
        "settled": ops.zeros((num_rows,), "bool"),
        "tokens": tokens,
        "prompt_lengths": prompt_lengths,
        "row_limits": row_limits,
        "row_ids": ops.arange(num_rows, dtype="int32"),
    }

    def done(index, rows):
        return ops.logical_or(rows["settled"], index >= rows["row_limits"])

    def one_step(index, rows, beam_rows):
        alive_tokens, settled = rows["alive_tokens"], rows["settled"]
        prompt_lengths, row_limits = rows["prompt_lengths"], rows["row_limits"]
        stage_rows = ops.shape(alive_tokens)[0]
        previous = ops.reshape(read_column_3d(alive_tokens, index - 1), (-1, 1))
        logits, cache = step_fn(
            previous, beam_rows["cache"], index - 1, beam_rows["context"]
        )  # [B * W, V]
        log_probs = ops.log_softmax(logits, axis=-1)
        log_probs = sampling.mask_ids(log_probs, inputs["masked_ids"])
        in_prompt = index < prompt_lengths  # [B]
        stage_inputs = {**inputs, "row_limits": row_limits}
        log_probs = sampling.force_id(
            log_probs,
            inputs["forced_eos_id"],
            ops.repeat(forces_eos(stage_inputs, index, in_prompt), width, axis=0),
        )
        vocabulary = ops.shape(log_probs)[-1]
        log_probs = ops.reshape(log_probs, (stage_rows, width, vocabulary))

        past_limit = index >= row_limits  # [B]
        forced = ops.where(in_prompt, read_column(rows["tokens"], index), fill)
        forced_log_probs = ops.where(
            ops.arange(vocabulary, dtype="int32")[None, :] == forced[:, None],
            0.0,
            NEGATIVE_INFINITY,
        )  # [B, V]
        is_forced = ops.logical_or(in_prompt, past_limit)
        log_probs = ops.where(
            is_forced[:, None, None], forced_log_probs[:, None, :], log_probs
        )

        candidates = rows["alive_log_probs"][:, :, None] + log_probs  # [B, W, V]
        # [B, 2W], as `top_k` over the flattened W * V gives them.
        top_log_probs, top_indices = _top_candidates(candidates, 2 * width)
        parents = top_indices // vocabulary
        new_tokens = top_indices % vocabulary
        top_tokens = _gather_beams(alive_tokens, parents)  # [B, 2W, L]
        top_tokens = _write_column_3d(top_tokens, index, new_tokens)
        generating = ops.logical_not(is_forced)[:, None]  # [B, 1]
        at_limit = (index + 1 >= row_limits)[:, None]
        ends = ops.logical_and(
            generating, ops.logical_or(ops.equal(new_tokens, eos_id), at_limit)
        )  # [B, 2W]

        alive_log_probs, keep = ops.top_k(
            ops.where(ends, NEGATIVE_INFINITY, top_log_probs), width
        )
        alive_tokens = _gather_beams(top_tokens, keep)
        cache = _gather_cache(cache, _gather_beams(parents, keep), width)

        num_new = ops.cast(index + 1 - prompt_lengths, "float32")  # [B]
        penalty = ops.power(ops.maximum(num_new, 1.0), alpha)[:, None]
        can_enter = ops.logical_not(settled)[:, None]
        enters = ops.logical_and(ops.logical_and(ends, in_top_w), can_enter)
        scores = ops.where(enters, top_log_probs / penalty, NEGATIVE_INFINITY)
        pool_scores = ops.concatenate([rows["fin_scores"], scores], axis=1)  # [B, 3W]
        pool_tokens = ops.concatenate([rows["fin_tokens"], top_tokens], axis=1)
        fin_scores, keep = ops.top_k(pool_scores, width)

        # transformers' estimate of the best score an alive beam can reach.
        best_alive = alive_log_probs[:, 0] / penalty[:, 0]
        full = ops.all(fin_scores > NEGATIVE_INFINITY, axis=1)
        cannot_improve = ops.logical_and(
            full, best_alive <= ops.min(fin_scores, axis=1)
        )
        cannot_improve = ops.logical_and(cannot_improve, num_new >= 1.0)
        settled = ops.logical_or(settled, cannot_improve)
        if early_stopping:
            settled = ops.logical_or(settled, ops.logical_and(full, num_new >= 1.0))
        rows = {
            **rows,
            "alive_tokens": alive_tokens,
            "alive_log_probs": alive_log_probs,
            "fin_tokens": _gather_beams(pool_tokens, keep),
            "fin_scores": fin_scores,
            "settled": settled,
        }
        return index + 1, rows, {**beam_rows, "cache": cache}

    def results(end, rows):
        return rows["fin_tokens"], rows["fin_scores"]

    return row_stages.run(
        ops.min(prompt_lengths),
        rows,
        {"cache": cache, "context": context},
        width,
        length,
        one_step,
        done,
        results,
        growth,
        fixed=("tokens", "prompt_lengths", "row_limits"),
    )
