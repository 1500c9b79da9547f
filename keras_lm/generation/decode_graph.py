"""The traced decoding function: prefill, then the greedy/sampling or beam loop.

Notation: B batch, P prompt length, S source length, L output buffer length,
W beams, V vocabulary.

The function takes one named structure, `DecodeInputs`, a dict of tensors
built by `decode_inputs`, so `generate` and the exports cannot pass its
arguments in different orders. Decoder-only models prefill the prompts' first
P - 1 positions in one call and repeat the cache per beam afterwards (B rows
of prefill, not B * W). Encoder-decoder models encode the sources once and
repeat the encoder outputs' cross-attention keys/values and the encoder
padding mask per beam, so every beam attends to its own row's source
(keras-hub#1047, #750).
"""

import keras
from keras import ops

from keras_lm.generation import (
    beam_search,
    beam_search_hf,
    decode_loop,
    row_stages,
    sampling,
)

NO_ID = -1  # an id tensor that matches no token (no EOS, no padding)


def decode_inputs(
    token_ids,
    prompt_lengths,
    row_limits,
    special_ids,
    seed=0,
    temperature=1.0,
    top_p=1.0,
    length_penalty=0.0,
    suppress_ids=(),
    forced_eos_id=None,
):
    """The decode function's one argument: a dict of tensors.

    Args:
        token_ids: [B, P] prompts (decoder-only) or sources (encoder-decoder),
            right-padded.
        prompt_lengths: [B] real prompt tokens; 1 for a target that starts
            with its start id.
        row_limits: [B] buffer position where each row must stop.
        special_ids: the `SpecialIds` decoding follows (pad never generated,
            rows end at EOS, targets start with `start_id`).
        seed, temperature, top_p: sampling options.
        length_penalty: alpha for beam search.
        suppress_ids: ids never generated (besides the pad id).
        forced_eos_id: the id every row must end with at its length limit,
            or None.
    """

    def id_or_none(value):
        return ops.convert_to_tensor(NO_ID if value is None else value, "int32")

    return {
        "token_ids": ops.cast(token_ids, "int32"),
        "prompt_lengths": ops.cast(prompt_lengths, "int32"),
        "row_limits": ops.cast(row_limits, "int32"),
        "pad_id": id_or_none(special_ids.pad_id),
        "eos_id": id_or_none(special_ids.eos_id),
        "start_id": id_or_none(special_ids.start_id),
        "seed": ops.cast(seed, "uint32"),
        "temperature": ops.cast(temperature, "float32"),
        "top_p": ops.cast(top_p, "float32"),
        "length_penalty": ops.cast(length_penalty, "float32"),
        # Never generated: the pad id and the suppressed ids; -1 is no id.
        "masked_ids": ops.convert_to_tensor(
            [NO_ID if special_ids.pad_id is None else special_ids.pad_id]
            + [int(i) for i in suppress_ids],
            "int32",
        ),
        "forced_eos_id": id_or_none(forced_eos_id),
    }


def fill_id(inputs):
    """What follows a row's end: padding, else EOS, else 0 (never read)."""
    return ops.where(
        inputs["pad_id"] >= 0, inputs["pad_id"], ops.maximum(inputs["eos_id"], 0)
    )


def build_decode_function(
    model,
    method,
    beams,
    top_k,
    use_top_p,
    length,
    is_seq2seq,
    length_penalty_mode="gnmt",
    early_stopping=False,
):
    """The Python function that `compiled.get_function` traces.

    Args:
        model: the model, used through its incremental decoding interface.
        method: "greedy", "sample" or "beam".
        beams: W (1 unless `method="beam"`).
        top_k: static k for sampling, or None.
        use_top_p: whether sampling truncates to a nucleus.
        length: L, the static length of the output buffer.
        is_seq2seq: the model has an encoder; targets start from the start id.
        length_penalty_mode: beam scoring, "gnmt" (keras_lm's) or "hf"
            (transformers').
        early_stopping: for "hf" beam search, transformers' `early_stopping`
            (True or False).

    Returns:
        `run(inputs)` taking the dict of `decode_inputs`, returning [B, L] ids,
        or for beam search `(ids [B, W, L], scores [B, W])`.
    """

    def run(inputs):
        fill = fill_id(inputs)
        if is_seq2seq:
            start = _start_seq2seq(model, inputs, fill, beams, length)
        else:
            start = _start_lm(model, inputs, fill, beams, length)
        tokens, step_fn, cache, context = start
        filled = 0 if is_seq2seq else ops.shape(inputs["token_ids"])[1] - 1
        growth = _growth(model, filled, length)
        if method == "beam" and length_penalty_mode == "hf":
            return beam_search_hf.beam_search(
                step_fn,
                cache,
                tokens,
                inputs,
                fill,
                beams,
                early_stopping,
                context,
                growth,
            )
        if method == "beam":
            return beam_search.beam_search(
                step_fn, cache, tokens, inputs, fill, beams, context, growth
            )
        if method == "greedy":

            def select_fn(logits, index):
                return sampling.greedy(logits)
        else:

            def select_fn(logits, index):
                return sampling.sample(
                    logits,
                    inputs["seed"],
                    index,
                    inputs["temperature"],
                    top_k=top_k,
                    top_p=inputs["top_p"] if use_top_p else None,
                )

        return decode_loop.decode(
            step_fn, cache, tokens, inputs, fill, select_fn, context, growth
        )

    return run


def _growth(model, filled, length):
    """The cache's growth stages (`row_stages.grow`), or None.

    Only models with `resize_cache(cache, max_length)` grow their cache, and
    only where the prefilled `filled` slots are known while tracing. A buffer
    length known only when XLA compiles (an export's, computed from the
    source width) gets the capacities of `max_sequence_length`, each capped
    at the length.
    """
    resize = getattr(model, "resize_cache", None)
    if resize is None or not isinstance(filled, int):
        return None
    if isinstance(length, int):
        capacities = row_stages.capacities(filled, length)
    else:
        longest = row_stages.capacities(filled, model.max_sequence_length)[:-1]
        capacities = [ops.minimum(c, length) for c in longest] + [length]
    return (capacities, resize) if len(capacities) > 1 else None


def _repeat_rows(structure, times):
    if times == 1:
        return structure
    # row b -> rows b*W ... b*W+W-1
    return keras.tree.map_structure(
        lambda tensor: ops.repeat(tensor, times, axis=0), structure
    )


def _buffer(first_tokens, fill, length):
    """[B, L]: `first_tokens` [B, P], then `fill` up to L."""
    batch, width = ops.shape(first_tokens)
    rest = ops.ones((batch, length - width), "int32") * fill
    return ops.concatenate([first_tokens, rest], axis=1)


def _output_kernel(model):
    """`decode_step`'s extra arguments: the model's output projection,
    transposed once before the loop, or nothing.

    Models written to the decoding interface without `output_kernel` (see
    `generate`'s module docstring) decode through their own projection.
    """
    get = getattr(model, "output_kernel", None)
    kernel = None if get is None else get()
    return () if kernel is None else (kernel,)


def _start_lm(model, inputs, fill, beams, length):
    """Buffer [B, L], step function, a cache prefilled up to P - 1 and the
    step's (empty) context."""
    prompts = inputs["token_ids"]
    batch, width = ops.shape(prompts)
    tokens = _buffer(prompts, fill, length)
    cache = model.empty_cache(batch, length)
    # Position P - 1 is fed by the first loop step, which yields the first
    # new token; shorter rows re-feed their slots later, overwriting them.
    if width > 1:
        _, cache = model.decode_step(prompts[:, : width - 1], cache, 0)
    cache = _repeat_rows(cache, beams)
    extra = _output_kernel(model)

    def step_fn(token_ids, cache, index, context):
        logits, cache = model.decode_step(token_ids, cache, index, *extra)
        return logits[:, 0], cache

    return tokens, step_fn, cache, ()


def _start_seq2seq(model, inputs, fill, beams, length):
    """Encode once; repeat encoder state per beam (keras-hub#1047, #750).

    The encoder state is the step's context: one entry per cache row, read by
    every step, and reordered only when rows leave a beam search
    (`row_stages`), never per step: a row's beams share its source.
    """
    sources = inputs["token_ids"]
    batch = ops.shape(sources)[0]
    encoder_outputs, encoder_mask = model.encode(sources)
    cross_caches = _repeat_rows(model.cross_attention_caches(encoder_outputs), beams)
    encoder_mask = _repeat_rows(encoder_mask, beams)
    cache = model.empty_cache(batch * beams, length)
    start = ops.ones((batch, 1), "int32") * inputs["start_id"]
    tokens = _buffer(start, fill, length)  # [B, L]
    extra = _output_kernel(model)

    def step_fn(token_ids, cache, index, context):
        cross_caches, encoder_mask = context
        logits, cache = model.decode_step(
            token_ids, cache, index, cross_caches, encoder_mask, *extra
        )
        return logits[:, 0], cache

    return tokens, step_fn, cache, (cross_caches, encoder_mask)
