"""`generate()`: decode from a TransformerLM or TransformerSeq2Seq.

Notation: B batch, P prompt length, S source length, L output length,
W beams, V vocabulary.

Checks run in Python on the host; everything from the prefill to the last step
runs in one compiled function (see `compiled.py`). Models are used through
their incremental decoding interface, so any object providing it works:
`max_sequence_length`, `empty_cache(batch_size, max_length)`,
`decode_step(token_ids, cache, cache_update_index[, cross_attention_caches,
encoder_padding_mask])`, and for encoder-decoder models `encode(ids)` and
`cross_attention_caches(encoder_outputs)`.
"""

import math

import numpy as np
from keras import ops

from keras_lm.generation import compiled
from keras_lm.generation.decode_graph import build_decode_function
from keras_lm.generation.validation import check_options, check_token_ids

METHODS = ("greedy", "sample", "beam")
BOS_ID = 2
EOS_ID = 3


def generate(
    model,
    token_ids,
    max_new_tokens=None,
    method="greedy",
    num_beams=4,
    length_penalty=0.6,
    top_k=None,
    top_p=None,
    temperature=1.0,
    seed=None,
    eos_id=EOS_ID,
    bos_id=BOS_ID,
    source_length_ratio=None,
    source_length_offset=0,
    return_all_beams=False,
    jit_compile=True,
):
    """Generate token ids with a key/value cache, in one compiled loop.

    For a `TransformerLM`, `token_ids` are prompts and each row continues its
    own prompt. For a `TransformerSeq2Seq`, they are source sentences; each
    target starts from `bos_id`. Rows stop independently at `eos_id` (then
    hold padding) or at their length limit. The padding id 0 is never
    generated.

    Args:
        model: a `TransformerLM` or `TransformerSeq2Seq`.
        token_ids: [B, P] integer ids, each row right-padded with 0; a list of
            lists or a NumPy array.
        max_new_tokens: most tokens to add per row. Defaults to what
            `max_sequence_length` leaves (P + new tokens, or 1 + new tokens for
            a target starting with BOS, must fit in it).
        method: "greedy", "sample" (temperature, top-k, top-p) or "beam".
        num_beams: W for `method="beam"`.
        length_penalty: alpha >= 0 of the GNMT length penalty
            ((5 + |Y|) / 6) ** alpha that divides beam scores (Wu et al.,
            2016); 0 ranks by plain log-probability.
        top_k: for sampling, draw only among the k most likely tokens.
        top_p: for sampling, draw only from the smallest set of most likely
            tokens whose probability reaches top_p, in (0, 1].
        temperature: for sampling, divides the logits; > 0.
        seed: int; the same seed gives the same samples. None draws one.
        eos_id: the id that ends a row; None never stops early.
        bos_id: first target token of an encoder-decoder model.
        source_length_ratio: encoder-decoder only; with it, a row gets at most
            `ceil(source_length_ratio * source_length + source_length_offset)`
            new tokens (source_length counts its non-padding ids).
        source_length_offset: see `source_length_ratio`.
        return_all_beams: for beam search, return every beam and its score.
        jit_compile: compile the loop with XLA (TensorFlow) or jax.jit.

    Returns:
        NumPy int32 [B, L]: the prompt followed by new tokens (decoder-only),
        or the target starting with `bos_id` (encoder-decoder), right-padded
        with 0. With `return_all_beams=True`, `(ids [B, W, L], scores [B, W])`
        sorted best first, where a score is log P(new tokens) / lp.

    Example:
    >>> model = keras_lm.models.TransformerLM(
    ...     vocabulary_size=32, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=16)
    >>> generate(model, [[2, 7, 9], [2, 5, 0]], max_new_tokens=4).shape
    (2, 7)
    >>> generate(model, [[2, 7]], method="sample", top_p=0.9, seed=1).shape
    (1, 16)
    """
    if method not in METHODS:
        raise ValueError(
            f"method must be one of {list(METHODS)}. Received: method={method!r}"
        )
    is_seq2seq = hasattr(model, "encode")
    name = "source token_ids" if is_seq2seq else "prompt token_ids"
    ids, lengths = check_token_ids(name, token_ids, model.max_sequence_length)
    check_options(
        method=method,
        num_beams=num_beams,
        length_penalty=length_penalty,
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        seed=seed,
        eos_id=eos_id,
        bos_id=bos_id,
        return_all_beams=return_all_beams,
        vocabulary_size=getattr(model, "vocabulary_size", None),
    )
    batch, width = ids.shape
    if is_seq2seq:
        num_new, row_new = _seq2seq_lengths(
            model,
            width,
            lengths,
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
        num_new = _lm_new_tokens(model, width, max_new_tokens)
        row_new = np.full((batch,), num_new, "int32")
        prompt_lengths = lengths
        length = width + num_new

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
    )
    function = compiled.get_function(
        model,
        key,
        lambda: build_decode_function(
            model, method, beams, top_k, use_top_p, length, is_seq2seq
        ),
        jit_compile=jit_compile,
    )
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    outputs = function(
        ops.convert_to_tensor(ids, "int32"),
        ops.convert_to_tensor(prompt_lengths, "int32"),
        ops.convert_to_tensor(prompt_lengths + row_new, "int32"),
        ops.convert_to_tensor(np.uint32(seed % 2**32), "uint32"),
        ops.convert_to_tensor(temperature, "float32"),
        ops.convert_to_tensor(1.0 if top_p is None else top_p, "float32"),
        ops.convert_to_tensor(length_penalty, "float32"),
        ops.convert_to_tensor(-1 if eos_id is None else eos_id, "int32"),
        ops.convert_to_tensor(bos_id, "int32"),
    )
    if method != "beam":
        return ops.convert_to_numpy(outputs)
    sequences, scores = (ops.convert_to_numpy(x) for x in outputs)
    if return_all_beams:
        return sequences, scores
    return sequences[:, 0]


def _lm_new_tokens(model, prompt_width, max_new_tokens):
    room = model.max_sequence_length - prompt_width
    if max_new_tokens is None:
        if room < 1:
            raise ValueError(
                f"The prompts (length {prompt_width}) leave no room to generate "
                f"within max_sequence_length={model.max_sequence_length}. "
                "Shorten the prompts."
            )
        return room
    _check_new_tokens(max_new_tokens)
    if max_new_tokens > room:
        raise ValueError(
            f"prompt length {prompt_width} + max_new_tokens={max_new_tokens} "
            f"exceeds max_sequence_length={model.max_sequence_length}. Lower "
            f"max_new_tokens to at most {room} or shorten the prompts."
        )
    return max_new_tokens


def _seq2seq_lengths(
    model, source_width, source_lengths, max_new_tokens, ratio, offset
):
    """Static new-token count of the buffer, and each row's own limit [B]."""
    room = model.max_sequence_length - 1  # the target starts with BOS
    if max_new_tokens is None:
        max_new_tokens = room
    _check_new_tokens(max_new_tokens)
    if max_new_tokens > room:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} does not fit: the target (BOS + new "
            f"tokens) must fit in max_sequence_length={model.max_sequence_length}."
            f" Use max_new_tokens <= {room}."
        )
    if ratio is None:
        return max_new_tokens, np.full(source_lengths.shape, max_new_tokens, "int32")
    if not isinstance(ratio, (int, float)) or ratio <= 0:
        raise ValueError(
            f"source_length_ratio must be a positive number. Received: "
            f"source_length_ratio={ratio!r}"
        )
    if not isinstance(offset, (int, float)):
        raise ValueError(
            f"source_length_offset must be a number. Received: "
            f"source_length_offset={offset!r}"
        )

    def limit(source_length):
        return max(1, min(max_new_tokens, math.ceil(ratio * source_length + offset)))

    rows = np.array([limit(int(n)) for n in source_lengths], "int32")
    # The buffer depends on the padded width only, so equal shapes share a graph.
    return limit(source_width), rows


def _check_new_tokens(max_new_tokens):
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, (int, np.integer))
        or max_new_tokens < 1
    ):
        raise ValueError(
            "max_new_tokens must be a positive integer. Received: "
            f"max_new_tokens={max_new_tokens!r}"
        )
