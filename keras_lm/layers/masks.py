"""Boolean attention masks, built and merged in one place.

Convention everywhere in keras_lm: masks are boolean and True means "may
attend". Padding masks come from the vocabulary's pad id (`keras_lm.SpecialIds`),
never from a literal. Notation: B batch, T query length, S key length.
"""

from keras import ops


def padding_mask(token_ids, pad_id):
    """[B, T] ids -> [B, T] bool, True at real (non-pad) tokens."""
    return ops.not_equal(token_ids, pad_id)


def causal_mask(query_length, key_length, offset=0):
    """[T, S] bool: query i may attend key j when j <= i + offset.

    `offset` is the absolute position of the first query, which is non-zero
    when decoding one token at a time against a key/value cache.
    """
    query_positions = ops.arange(query_length, dtype="int32")[:, None] + ops.cast(
        offset, "int32"
    )
    key_positions = ops.arange(key_length, dtype="int32")[None, :]
    return ops.less_equal(key_positions, query_positions)


def merge_masks(
    query_length,
    key_length,
    value_mask=None,
    attention_mask=None,
    use_causal_mask=False,
    causal_offset=0,
):
    """Combine key padding, an explicit mask and causality into [B|1, T, S].

    Args:
        query_length: T.
        key_length: S.
        value_mask: [B, S] bool, True at real keys.
        attention_mask: [B, T, S] bool.
        use_causal_mask: also forbid attending to later positions.
        causal_offset: absolute position of the first query (see `causal_mask`).

    Returns:
        A boolean tensor broadcastable to [B, T, S], or None when nothing masks.
    """
    mask = None
    if value_mask is not None:
        mask = ops.cast(value_mask, "bool")[:, None, :]  # [B, 1, S]
    if attention_mask is not None:
        attention_mask = ops.cast(attention_mask, "bool")
        mask = attention_mask if mask is None else ops.logical_and(mask, attention_mask)
    if use_causal_mask:
        causal = causal_mask(query_length, key_length, causal_offset)[None]  # [1,T,S]
        mask = causal if mask is None else ops.logical_and(mask, causal)
    return mask
