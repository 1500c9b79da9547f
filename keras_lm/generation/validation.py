"""Checks on `generate()` arguments, run on the host before compiling.

Each error names the offending value and says how to fix it.
"""

import numpy as np

from keras_lm.layers.validation import check_ids_in_vocabulary


def check_token_ids(
    name, token_ids, max_sequence_length, vocabulary_size, pad_id, padding_mask=None
):
    """Validate [B, P] right-padded ids; return (int32 ids, lengths [B]).

    Args:
        name: how the ids are called in messages.
        token_ids: array-like of integer ids in `[0, vocabulary_size)`.
        max_sequence_length: the model's limit on P.
        vocabulary_size: the model's V, or None not to check.
        pad_id: the vocabulary's pad id, or None when it has none.
        padding_mask: optional [B, P] bool, True at real ids. Without it, real
            ids are those that are not `pad_id` (all of them if it is None).
    """
    ids = _to_numpy(token_ids)
    if ids.dtype == object:
        raise ValueError(
            f"{name} must be a rectangular [batch, length] array of integer ids; "
            "pad the rows to one length. Received ragged rows."
        )
    if ids.size == 0:
        raise ValueError(
            f"{name} is empty (shape={ids.shape}). Pass at least one id per row, "
            "e.g. the start-of-text id (special_ids.text_start_id)."
        )
    if ids.ndim == 1:
        raise ValueError(
            f"{name} must have shape [batch, length]. Received shape={ids.shape}; "
            "for one sequence pass [ids]."
        )
    if ids.ndim != 2:
        raise ValueError(
            f"{name} must have shape [batch, length]. Received shape={ids.shape}."
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(
            f"{name} must hold integer token ids. Received dtype={ids.dtype}. "
            "Tokenize text first (keras_lm.tokenizers) and pass int32 ids."
        )
    if ids.shape[1] > max_sequence_length:
        raise ValueError(
            f"{name} has length {ids.shape[1]}, longer than max_sequence_length="
            f"{max_sequence_length}. Truncate the inputs."
        )
    if ids.min() < 0:
        raise ValueError(
            f"{name} must be non-negative ids. Received a minimum of {ids.min()}."
        )
    if vocabulary_size is not None:
        check_ids_in_vocabulary(name, ids, vocabulary_size)
    if ids.max() >= 2**31:
        raise ValueError(f"{name} has ids too large for int32: {ids.max()}.")
    if padding_mask is not None:
        real = _to_numpy(padding_mask)
        if real.shape != ids.shape:
            raise ValueError(
                f"padding_mask must have the shape of {name}, {ids.shape}. "
                f"Received shape={real.shape}."
            )
        real = real.astype(bool)
    elif pad_id is not None:
        real = ids != pad_id
    else:
        real = np.ones(ids.shape, bool)
    lengths = real.sum(axis=1).astype("int32")
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ValueError(
            f"{name} row {int(empty[0])} is empty (only padding). Give every row "
            "at least one id, e.g. the start-of-text id (special_ids.text_start_id)."
        )
    # Right padding: the real ids of each row come first.
    gaps = real != (np.arange(ids.shape[1])[None, :] < lengths[:, None])
    if gaps.any():
        row = int(np.flatnonzero(gaps.any(axis=1))[0])
        raise ValueError(
            f"{name} row {row} has padding before a real id: {ids[row].tolist()}."
            " Rows must be right-padded: real ids first, then padding."
        )
    return ids.astype("int32"), lengths


def _to_numpy(value):
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_options(
    method,
    num_beams,
    length_penalty,
    top_k,
    top_p,
    temperature,
    seed,
    eos_id,
    decoder_start_id,
    return_all_beams,
    vocabulary_size,
):
    """Refuse decoding options that are out of range or do not apply."""
    if not _is_int(num_beams) or num_beams < 1:
        raise ValueError(
            f"num_beams must be a positive integer. Received: num_beams={num_beams!r}"
        )
    if vocabulary_size is not None and num_beams > vocabulary_size:
        raise ValueError(
            f"num_beams={num_beams} exceeds the vocabulary size {vocabulary_size}."
        )
    if not isinstance(length_penalty, (int, float)) or length_penalty < 0:
        raise ValueError(
            "length_penalty must be a number >= 0 (0.6 in GNMT, 0 for none). "
            f"Received: length_penalty={length_penalty!r}"
        )
    if top_k is not None:
        if not _is_int(top_k) or top_k < 1:
            raise ValueError(
                f"top_k must be a positive integer or None. Received: top_k={top_k!r}"
            )
        if vocabulary_size is not None and top_k > vocabulary_size:
            raise ValueError(
                f"top_k={top_k} exceeds the vocabulary size {vocabulary_size}."
            )
    if top_p is not None and (
        not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0
    ):
        raise ValueError(f"top_p must be in (0, 1]. Received: top_p={top_p!r}")
    if not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(
            "temperature must be a number > 0 (use method='greedy' for the "
            f"zero-temperature limit). Received: temperature={temperature!r}"
        )
    if seed is not None and not _is_int(seed):
        raise ValueError(f"seed must be an integer or None. Received: seed={seed!r}")
    for id_name, value in (("eos_id", eos_id), ("decoder_start_id", decoder_start_id)):
        if value is None:
            continue
        if not _is_int(value) or value < 0:
            raise ValueError(
                f"{id_name} must be a non-negative integer or None. "
                f"Received: {id_name}={value!r}"
            )
        if vocabulary_size is not None and value >= vocabulary_size:
            raise ValueError(
                f"{id_name}={value} is outside the vocabulary of size "
                f"{vocabulary_size}."
            )
    if method != "sample" and (top_k is not None or top_p is not None):
        raise ValueError(
            f"top_k and top_p apply to method='sample'. Received: method={method!r}, "
            f"top_k={top_k!r}, top_p={top_p!r}"
        )
    if return_all_beams and method != "beam":
        raise ValueError(
            f"return_all_beams applies to method='beam'. Received: method={method!r}"
        )


def check_decoding_extras(
    method,
    num_beams,
    num_return_sequences,
    suppress_ids,
    forced_eos_id,
    length_penalty_mode,
    early_stopping,
    return_all_beams,
    vocabulary_size,
    modes,
):
    """Checks of the options transformers' checkpoints bring; returns the
    suppressed ids as a tuple of ints."""
    if not _is_int(num_return_sequences) or num_return_sequences < 1:
        raise ValueError(
            "num_return_sequences must be a positive integer. Received: "
            f"num_return_sequences={num_return_sequences!r}"
        )
    if num_return_sequences > 1:
        if method == "greedy":
            raise ValueError(
                "num_return_sequences > 1 needs method='sample' or 'beam' (greedy "
                "decoding has one answer). Received: "
                f"num_return_sequences={num_return_sequences}"
            )
        if method == "beam" and num_return_sequences > num_beams:
            raise ValueError(
                f"num_return_sequences={num_return_sequences} exceeds "
                f"num_beams={num_beams}; beam search returns at most its beams."
            )
        if return_all_beams:
            raise ValueError(
                "Pass either return_all_beams=True or num_return_sequences > 1, "
                "not both."
            )
    if length_penalty_mode not in modes:
        raise ValueError(
            f"length_penalty_mode must be one of {list(modes)}. Received: "
            f"length_penalty_mode={length_penalty_mode!r}"
        )
    if early_stopping not in (True, False):
        raise ValueError(
            "early_stopping must be True or False (transformers' 'never' is not "
            f"supported). Received: early_stopping={early_stopping!r}"
        )
    if early_stopping and length_penalty_mode != "hf":
        raise ValueError(
            "early_stopping applies to length_penalty_mode='hf'; GNMT beam search "
            "always stops once no alive beam can win."
        )
    suppress = tuple(suppress_ids or ())
    for name, values in (
        ("suppress_ids", suppress),
        ("forced_eos_id", (forced_eos_id,)),
    ):
        for value in values:
            if value is None:
                continue
            if not _is_int(value) or value < 0:
                raise ValueError(
                    f"{name} must hold non-negative integer ids. Received: "
                    f"{name}={value!r}"
                )
            if vocabulary_size is not None and value >= vocabulary_size:
                raise ValueError(
                    f"{name} has id {value}, outside the vocabulary of size "
                    f"{vocabulary_size}."
                )
    if forced_eos_id is not None and forced_eos_id in suppress:
        raise ValueError(
            f"forced_eos_id={forced_eos_id} is also in suppress_ids; it could never "
            "be generated."
        )
    return tuple(int(i) for i in suppress)
