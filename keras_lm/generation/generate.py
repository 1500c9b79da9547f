"""`generate()`: decode from a TransformerLM or TransformerSeq2Seq.

Notation: B batch, P prompt length, S source length, L output length,
W beams, V vocabulary.

Checks run in Python on the host; everything from the prefill to the last step
runs in one compiled function (see `compiled.py`). Models are used through
their incremental decoding interface, so any object providing it works:
`max_sequence_length`, `empty_cache(batch_size, max_length)`,
`decode_step(token_ids, cache, cache_update_index[, cross_attention_caches,
encoder_padding_mask])`, and for encoder-decoder models `encode(ids)` and
`cross_attention_caches(encoder_outputs)`. A model may also offer
`output_kernel()`: decoding then computes it once and passes it to every
`decode_step` as a last argument, and `resize_cache(cache, max_length)`:
decoding then grows the cache in stages instead of attending to the whole
buffer from the first step (`row_stages`).
"""

import dataclasses

import numpy as np
from keras import ops

from keras_lm.generation import compiled, lengths
from keras_lm.generation.decode_graph import build_decode_function, decode_inputs
from keras_lm.generation.validation import (
    check_decoding_extras,
    check_options,
    check_token_ids,
)
from keras_lm.special_ids import SpecialIds

METHODS = ("greedy", "sample", "beam")
LENGTH_PENALTY_MODES = ("gnmt", "hf")
_MODEL = object()  # default of the id overrides: the model's own special ids


class _ModelDefault:
    """Default of the options a model's `generation_config` may set."""

    def __repr__(self):
        return "<model default>"


MODEL_DEFAULT = _ModelDefault()
# What an option is when neither the caller nor the model's
# generation_config sets it.
DEFAULTS = {
    "method": "greedy",
    "max_new_tokens": None,
    "max_length": None,
    "num_beams": 4,
    "length_penalty": 0.6,
    "length_penalty_mode": "gnmt",
    "early_stopping": False,
    "top_k": None,
    "top_p": None,
    "temperature": 1.0,
    "num_return_sequences": 1,
    "suppress_ids": (),
    "forced_eos_id": None,
}


def generate(
    model,
    token_ids,
    max_new_tokens=MODEL_DEFAULT,
    method=MODEL_DEFAULT,
    num_beams=MODEL_DEFAULT,
    length_penalty=MODEL_DEFAULT,
    top_k=MODEL_DEFAULT,
    top_p=MODEL_DEFAULT,
    temperature=MODEL_DEFAULT,
    seed=None,
    eos_id=_MODEL,
    decoder_start_id=_MODEL,
    padding_mask=None,
    source_length_ratio=None,
    source_length_offset=0,
    return_all_beams=False,
    jit_compile=True,
    num_return_sequences=MODEL_DEFAULT,
    suppress_ids=MODEL_DEFAULT,
    forced_eos_id=MODEL_DEFAULT,
    length_penalty_mode=MODEL_DEFAULT,
    early_stopping=MODEL_DEFAULT,
    max_length=MODEL_DEFAULT,
):
    """Generate token ids with a key/value cache, in one compiled loop.

    For a `TransformerLM`, `token_ids` are prompts and each row continues its
    own prompt; a prompt starts with the start-of-text id
    (`model.special_ids.text_start_id`, as `keras_lm.tokenizers.encoding.
    encode_prompts` writes it). For a `TransformerSeq2Seq`, they are source
    sentences ending with EOS; each target starts with the decoder start id.
    Rows stop independently at EOS (then hold padding, or EOS where the
    vocabulary has no pad id) or at their length limit. The special ids come
    from `model.special_ids`; the pad id is never generated, every other id
    can be.

    Options marked (*) that the caller leaves out come from the model's
    `generation_config` (a converted checkpoint's `generation_config.json`)
    when it sets them, else from the defaults given here.

    Args:
        model: a `TransformerLM` or `TransformerSeq2Seq`.
        token_ids: [B, P] integer ids in `[0, vocabulary_size)`, each row
            right-padded with the pad id; a list of lists or a NumPy array.
        max_new_tokens: (*) most tokens to add per row. Defaults to what
            `max_sequence_length` leaves (P + new tokens, or 1 + new tokens for
            a target starting with its start id, must fit in it).
        method: (*) "greedy" (default), "sample" (temperature, top-k, top-p)
            or "beam".
        num_beams: (*) W for `method="beam"`; 4.
        length_penalty: (*) alpha >= 0 dividing beam scores; 0.6. With
            `length_penalty_mode="gnmt"` the penalty is GNMT's
            ((5 + |Y|) / 6) ** alpha (Wu et al., 2016), with "hf" it is
            transformers' |Y| ** alpha; 0 ranks by plain log-probability.
        top_k: (*) for sampling, draw only among the k most likely tokens.
        top_p: (*) for sampling, draw only from the smallest set of most
            likely tokens whose probability reaches top_p, in (0, 1].
        temperature: (*) for sampling, divides the logits; > 0; 1.0.
        seed: int; the same seed gives the same samples. None draws one.
        eos_id: overrides the model's EOS id; None never stops early.
        decoder_start_id: overrides the model's decoder start id
            (encoder-decoder models).
        padding_mask: optional [B, P] bool, True at real ids; needed for
            padded prompts when the vocabulary has no pad id (GPT-2).
        source_length_ratio: encoder-decoder only; with it, a row gets at most
            `ceil(source_length_ratio * source_length + source_length_offset)`
            new tokens (source_length counts its non-padding ids).
        source_length_offset: see `source_length_ratio`.
        return_all_beams: for beam search, return every beam and its score.
        jit_compile: compile the loop with XLA (TensorFlow) or jax.jit.
        num_return_sequences: (*) N outputs per row for "sample" (N draws)
            and "beam" (the N best of W >= N beams); 1.
        suppress_ids: (*) ids never generated (transformers' single-token
            `bad_words_ids`); none by default.
        forced_eos_id: (*) id every row ends with when it reaches its length
            limit without EOS (transformers' `forced_eos_token_id`); None.
        length_penalty_mode: (*) "gnmt" (default: per-beam finishing, EOS
            taken from all 2W candidates) or "hf", transformers' beam search
            (EOS kept only from the top W of 2W candidates, beams cut at the
            length limit compete, suppressed ids masked after the softmax).
        early_stopping: (*) for "hf" beam search, transformers' option: False
            (default) or True (a row stops once it has W finished beams).
        max_length: (*) transformers' total length instead of
            `max_new_tokens`: P + new tokens (decoder-only) or 1 + new tokens
            (encoder-decoder). An explicit `max_new_tokens` wins.

    Returns:
        NumPy int32 [B * N, L]: the prompt followed by new tokens
        (decoder-only), or the target starting with its start id
        (encoder-decoder), then padding; row i * N + j is the j-th output for
        input row i. With `return_all_beams=True`, `(ids [B, W, L], scores
        [B, W])` sorted best first, where a score is log P(new tokens) / lp.

    Example:
    >>> model = keras_lm.models.TransformerLM(
    ...     vocabulary_size=32, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=16)
    >>> generate(model, [[2, 7, 9], [2, 5, 0]], max_new_tokens=4).shape
    (2, 7)
    >>> generate(model, [[2, 7]], method="sample", top_p=0.9, seed=1).shape
    (1, 16)
    >>> generate(model, [[2, 7]], method="beam", num_return_sequences=3).shape
    (3, 16)
    """
    given = {
        "method": method,
        "max_new_tokens": max_new_tokens,
        "max_length": max_length,
        "num_beams": num_beams,
        "length_penalty": length_penalty,
        "length_penalty_mode": length_penalty_mode,
        "early_stopping": early_stopping,
        "top_k": top_k,
        "top_p": top_p,
        "temperature": temperature,
        "num_return_sequences": num_return_sequences,
        "suppress_ids": suppress_ids,
        "forced_eos_id": forced_eos_id,
    }
    options = resolve_options(model, given)
    method, num_beams = options["method"], options["num_beams"]
    length_penalty, top_k = options["length_penalty"], options["top_k"]
    top_p, temperature = options["top_p"], options["temperature"]
    num_return_sequences = options["num_return_sequences"]
    length_penalty_mode = options["length_penalty_mode"]
    early_stopping = options["early_stopping"]
    if method not in METHODS:
        raise ValueError(
            f"method must be one of {list(METHODS)}. Received: method={method!r}"
        )
    special_ids = SpecialIds.from_value(getattr(model, "special_ids", None))
    overrides = {}
    if eos_id is not _MODEL:
        overrides["eos_id"] = eos_id
    if decoder_start_id is not _MODEL:
        overrides["decoder_start_id"] = decoder_start_id
    vocabulary_size = getattr(model, "vocabulary_size", None)
    check_options(
        method=method,
        num_beams=num_beams,
        length_penalty=length_penalty,
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        seed=seed,
        eos_id=overrides.get("eos_id"),
        decoder_start_id=overrides.get("decoder_start_id"),
        return_all_beams=return_all_beams,
        vocabulary_size=vocabulary_size,
    )
    suppress = check_decoding_extras(
        method=method,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        suppress_ids=options["suppress_ids"],
        forced_eos_id=options["forced_eos_id"],
        length_penalty_mode=length_penalty_mode,
        early_stopping=early_stopping,
        return_all_beams=return_all_beams,
        vocabulary_size=vocabulary_size,
        modes=LENGTH_PENALTY_MODES,
    )
    special_ids = dataclasses.replace(special_ids, **overrides)
    is_seq2seq = hasattr(model, "encode")
    name = "source token_ids" if is_seq2seq else "prompt token_ids"
    ids, row_lengths = check_token_ids(
        name,
        token_ids,
        model.max_sequence_length,
        vocabulary_size,
        special_ids.pad_id,
        padding_mask,
    )
    batch, width = ids.shape
    max_new_tokens = options["max_new_tokens"]
    if max_new_tokens is None and options["max_length"] is not None:
        max_new_tokens = lengths.from_max_length(
            options["max_length"], 1 if is_seq2seq else width
        )
    if max_new_tokens is not None and options["length_from_model"]:
        # A checkpoint's max_length (512 for OPUS-MT) may exceed what this
        # model or these prompts leave; its own limit then applies.
        room = model.max_sequence_length - (1 if is_seq2seq else width)
        max_new_tokens = max(1, min(max_new_tokens, room))
    if is_seq2seq:
        if padding_mask is not None:
            raise ValueError(
                "padding_mask applies to decoder-only prompts; a source's "
                "padding is its pad id."
            )
        num_new, row_new = lengths.seq2seq_new_tokens(
            model,
            width,
            row_lengths,
            max_new_tokens,
            source_length_ratio,
            source_length_offset,
        )
        prompt_lengths = np.ones((batch,), "int32")
        length = 1 + num_new
    else:
        if source_length_ratio is not None:
            raise ValueError(
                "source_length_ratio applies to encoder-decoder models only. "
                f"Received: source_length_ratio={source_length_ratio} for a "
                f"{type(model).__name__}; use max_new_tokens."
            )
        num_new = lengths.lm_new_tokens(model, width, max_new_tokens)
        row_new = np.full((batch,), num_new, "int32")
        prompt_lengths = row_lengths
        length = width + num_new

    if method == "sample" and num_return_sequences > 1:
        # N draws per row: row i becomes rows i * N ... i * N + N - 1.
        repeat = num_return_sequences
        ids, prompt_lengths, row_new = (
            np.repeat(x, repeat, axis=0) for x in (ids, prompt_lengths, row_new)
        )
        batch *= repeat
    beams = num_beams if method == "beam" else 1
    use_top_p = method == "sample" and top_p is not None and top_p < 1.0
    key = (
        method,
        beams,
        top_k if method == "sample" else None,
        use_top_p,
        batch,
        width,
        length,
        is_seq2seq,
        length_penalty_mode if method == "beam" else None,
        early_stopping if method == "beam" else None,
    )
    function = compiled.get_function(
        model,
        key,
        lambda: build_decode_function(
            model,
            method,
            beams,
            top_k,
            use_top_p,
            length,
            is_seq2seq,
            length_penalty_mode=length_penalty_mode,
            early_stopping=early_stopping,
        ),
        jit_compile=jit_compile,
    )
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    outputs = function(
        decode_inputs(
            ids,
            prompt_lengths,
            prompt_lengths + row_new,
            special_ids,
            seed=np.uint32(seed % 2**32),
            temperature=temperature,
            top_p=1.0 if top_p is None else top_p,
            length_penalty=length_penalty,
            suppress_ids=suppress,
            forced_eos_id=options["forced_eos_id"],
        )
    )
    if method != "beam":
        return ops.convert_to_numpy(outputs)
    sequences, scores = (ops.convert_to_numpy(x) for x in outputs)
    if return_all_beams:
        return sequences, scores
    best = sequences[:, :num_return_sequences]  # [B, N, L]
    return best.reshape((-1, best.shape[-1]))


def resolve_options(model, given):
    """Each option: as given, else the model's generation_config, else
    `DEFAULTS`. An explicit max_new_tokens or max_length replaces both
    length options of the generation_config."""
    config = dict(getattr(model, "generation_config", None) or {})
    if any(
        given[name] is not MODEL_DEFAULT for name in ("max_new_tokens", "max_length")
    ):
        config.pop("max_new_tokens", None)
        config.pop("max_length", None)
    options = {}
    for name, value in given.items():
        if value is MODEL_DEFAULT:
            value = config.get(name, DEFAULTS[name])
        options[name] = value
    # The config's options of another method do not apply to the one asked for.
    unused = {"sample": ("num_beams",), "greedy": ("num_return_sequences",)}.get(
        options["method"], ()
    )
    if options["method"] != "sample":
        unused += ("top_k", "top_p", "temperature")
    for name in unused:
        if given[name] is MODEL_DEFAULT:
            options[name] = DEFAULTS[name]
    if options["max_new_tokens"] is not None and given["max_length"] is MODEL_DEFAULT:
        options["max_length"] = None
    options["length_from_model"] = bool({"max_new_tokens", "max_length"} & set(config))
    return options
