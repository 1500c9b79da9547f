"""Checks on `generate()` arguments, run on the host before compiling.

Each error names the offending value and says how to fix it.
"""

import numpy as np


def check_token_ids(name, token_ids, max_sequence_length):
    """Validate [B, P] right-padded ids; return (int32 ids, lengths [B]).

    Args:
        name: how the ids are called in messages.
        token_ids: array-like of integer ids, 0 = padding.
        max_sequence_length: the model's limit on P.
    """
    if hasattr(token_ids, "numpy") and not isinstance(token_ids, np.ndarray):
        token_ids = token_ids.numpy()
    ids = np.asarray(token_ids)
    if ids.dtype == object:
        raise ValueError(
            f"{name} must be a rectangular [batch, length] array of integer ids; "
            "pad the rows with 0 to one length. Received ragged rows."
        )
    if ids.size == 0:
        raise ValueError(
            f"{name} is empty (shape={ids.shape}). Pass at least one id per row, "
            "e.g. the BOS id 2 to start an unconditioned sequence."
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
    if ids.max() >= 2**31:
        raise ValueError(f"{name} has ids too large for int32: {ids.max()}.")
    real = ids != 0
    lengths = real.sum(axis=1).astype("int32")
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ValueError(
            f"{name} row {int(empty[0])} is empty (only padding). Give every row "
            "at least one id, e.g. the BOS id 2."
        )
    # Right padding: the real ids of each row come first.
    gaps = real != (np.arange(ids.shape[1])[None, :] < lengths[:, None])
    if gaps.any():
        row = int(np.flatnonzero(gaps.any(axis=1))[0])
        raise ValueError(
            f"{name} row {row} has padding (0) before a real id: {ids[row].tolist()}."
            " Rows must be right-padded: real ids first, then zeros."
        )
    return ids.astype("int32"), lengths


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
    bos_id,
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
    if eos_id is not None and (not _is_int(eos_id) or eos_id < 0):
        raise ValueError(
            "eos_id must be a non-negative integer or None. "
            f"Received: eos_id={eos_id!r}"
        )
    if not _is_int(bos_id) or bos_id < 1:
        raise ValueError(
            "bos_id must be a positive integer (0 is padding). "
            f"Received: bos_id={bos_id!r}"
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
