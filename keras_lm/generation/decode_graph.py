"""The traced decoding function: prefill, then the greedy/sampling or beam loop.

Notation: B batch, P prompt length, S source length, L output buffer length,
W beams, V vocabulary.

Decoder-only models prefill the prompts' first P - 1 positions in one call and
repeat the cache per beam afterwards (B rows of prefill, not B * W).
Encoder-decoder models encode the sources once and repeat the encoder outputs'
cross-attention keys/values and the encoder padding mask per beam, so every
beam attends to its own row's source (keras-hub#1047, #750).
"""

from keras import ops

from keras_lm.generation import beam_search, decode_loop, sampling


def build_decode_function(model, method, beams, top_k, use_top_p, length, is_seq2seq):
    """The Python function that `compiled.get_function` traces.

    Args:
        model: the model, used through its incremental decoding interface.
        method: "greedy", "sample" or "beam".
        beams: W (1 unless `method="beam"`).
        top_k: static k for sampling, or None.
        use_top_p: whether sampling truncates to a nucleus.
        length: L, the static length of the output buffer.
        is_seq2seq: the model has an encoder; targets start from BOS.

    Returns:
        `run(ids, prompt_lengths, row_limits, seed, temperature, top_p, alpha,
        eos_id, bos_id)` taking tensors only, returning [B, L] ids, or for beam
        search `(ids [B, W, L], scores [B, W])`.
    """

    def run(
        ids, prompt_lengths, row_limits, seed, temperature, top_p, alpha, eos_id, bos_id
    ):
        if is_seq2seq:
            tokens, step_fn, cache = _start_seq2seq(model, ids, bos_id, beams, length)
        else:
            tokens, step_fn, cache = _start_lm(model, ids, beams, length)
        if method == "beam":
            return beam_search.beam_search(
                step_fn,
                cache,
                tokens,
                prompt_lengths,
                row_limits,
                beams,
                alpha,
                eos_id,
            )
        if method == "greedy":

            def select_fn(logits, index):
                return sampling.greedy(logits)
        else:

            def select_fn(logits, index):
                return sampling.sample(
                    logits,
                    seed,
                    index,
                    temperature,
                    top_k=top_k,
                    top_p=top_p if use_top_p else None,
                )

        return decode_loop.decode(
            step_fn, cache, tokens, prompt_lengths, row_limits, select_fn, eos_id
        )

    return run


def _repeat_rows(structure, times):
    if times == 1:
        return structure
    if isinstance(structure, (tuple, list)):
        return tuple(_repeat_rows(item, times) for item in structure)
    return ops.repeat(structure, times, axis=0)  # row b -> rows b*W ... b*W+W-1


def _start_lm(model, prompts, beams, length):
    """Buffer [B, L], step function and a cache prefilled up to P - 1."""
    batch, width = ops.shape(prompts)
    tokens = ops.pad(prompts, [[0, 0], [0, length - width]])
    cache = model.empty_cache(batch, length)
    # Position P - 1 is fed by the first loop step, which yields the first
    # new token; shorter rows re-feed their slots later, overwriting them.
    if width > 1:
        _, cache = model.decode_step(prompts[:, : width - 1], cache, 0)
    cache = _repeat_rows(cache, beams)

    def step_fn(token_ids, cache, index):
        logits, cache = model.decode_step(token_ids, cache, index)
        return logits[:, 0], cache

    return tokens, step_fn, cache


def _start_seq2seq(model, sources, bos_id, beams, length):
    """Encode once; repeat encoder state per beam (keras-hub#1047, #750)."""
    batch = ops.shape(sources)[0]
    encoder_outputs, encoder_mask = model.encode(sources)
    cross_caches = _repeat_rows(model.cross_attention_caches(encoder_outputs), beams)
    encoder_mask = _repeat_rows(encoder_mask, beams)
    cache = model.empty_cache(batch * beams, length)
    bos = ops.full((batch, 1), 1, "int32") * ops.cast(bos_id, "int32")
    tokens = ops.pad(bos, [[0, 0], [0, length - 1]])  # [B, L]

    def step_fn(token_ids, cache, index):
        logits, cache = model.decode_step(
            token_ids, cache, index, cross_caches, encoder_mask
        )
        return logits[:, 0], cache

    return tokens, step_fn, cache
