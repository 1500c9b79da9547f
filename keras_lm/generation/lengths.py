"""How long outputs may be: one rule for `generate` and the exports.

An encoder-decoder target gets at most `ceil(ratio * source_tokens + offset)`
new tokens, clipped to [1, the room the model leaves]; a decoder-only prompt
gets `max_new_tokens`, or what `max_sequence_length` leaves.
"""

import numpy as np
from keras import ops


def new_token_limits(source_lengths, ratio, offset, max_new_tokens):
    """[B] int32 new-token limits for sources of `source_lengths` tokens.

    Computed with `keras.ops` in float32, so `generate` (on the host) and an
    exported graph give the same limits, negative offsets included.
    """
    limits = ops.ceil(ops.cast(source_lengths, "float32") * ratio + offset)
    return ops.cast(ops.clip(limits, 1, max_new_tokens), "int32")


def lm_new_tokens(model, prompt_width, max_new_tokens):
    """New tokens for right-padded prompts of `prompt_width` ids."""
    room = model.max_sequence_length - prompt_width
    if max_new_tokens is None:
        if room < 1:
            raise ValueError(
                f"The prompts (length {prompt_width}) leave no room to generate "
                f"within max_sequence_length={model.max_sequence_length}. "
                "Shorten the prompts."
            )
        return room
    check_new_tokens(max_new_tokens)
    if max_new_tokens > room:
        raise ValueError(
            f"prompt length {prompt_width} + max_new_tokens={max_new_tokens} "
            f"exceeds max_sequence_length={model.max_sequence_length}. Lower "
            f"max_new_tokens to at most {room} or shorten the prompts."
        )
    return max_new_tokens


def seq2seq_new_tokens(
    model, source_width, source_lengths, max_new_tokens, ratio, offset
):
    """Static new-token count of the buffer, and each row's own limit [B]."""
    room = model.max_sequence_length - 1  # the target starts with its start id
    if max_new_tokens is None:
        max_new_tokens = room
    check_new_tokens(max_new_tokens)
    if max_new_tokens > room:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} does not fit: the target (start id + "
            f"new tokens) must fit in max_sequence_length={model.max_sequence_length}"
            f". Use max_new_tokens <= {room}."
        )
    if ratio is None:
        return max_new_tokens, np.full(source_lengths.shape, max_new_tokens, "int32")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
        raise ValueError(
            f"source_length_ratio must be a positive number. Received: "
            f"source_length_ratio={ratio!r}"
        )
    if isinstance(offset, bool) or not isinstance(offset, (int, float)):
        raise ValueError(
            f"source_length_offset must be a number. Received: "
            f"source_length_offset={offset!r}"
        )
    rows = ops.convert_to_numpy(
        new_token_limits(source_lengths, ratio, offset, max_new_tokens)
    )
    # The buffer depends on the padded width only, so equal shapes share a graph.
    widest = new_token_limits(np.array([source_width]), ratio, offset, max_new_tokens)
    return int(ops.convert_to_numpy(widest)[0]), rows.astype("int32")


def from_max_length(max_length, start_width):
    """New tokens for transformers' `max_length`, which counts the
    `start_width` ids a row starts with (prompt, or a target's start id)."""
    check_new_tokens(max_length, "max_length")
    if max_length <= start_width:
        raise ValueError(
            f"max_length={max_length} leaves no room to generate after "
            f"{start_width} starting ids; max_length counts them (transformers' "
            "convention). Raise it or pass max_new_tokens."
        )
    return max_length - start_width


def check_new_tokens(max_new_tokens, name="max_new_tokens"):
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, (int, np.integer))
        or max_new_tokens < 1
    ):
        raise ValueError(
            f"{name} must be a positive integer. Received: {name}={max_new_tokens!r}"
        )
