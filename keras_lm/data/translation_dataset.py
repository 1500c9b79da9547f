"""tf.data pipeline for translation: string pairs in, padded int32 batches out.

Shapes: B = batch size, S = source (encoder) length, T = target length.

For a pair (source, target) with token ids `src` and `tgt`
(`keras_lm.tokenizers.encoding`):
    encoder_token_ids = src + [EOS]
    decoder_token_ids = [START] + tgt   (teacher forcing input; START is BOS
                                         or the vocabulary's decoder start)
    labels            =           tgt + [EOS]
Every sequence is at most `max_length` long (a cut target keeps no EOS label),
padding is the tokenizer's pad id, and `sample_weight` is 1.0 on real label
positions and 0.0 on padding.
"""

import tensorflow as tf

from keras_lm.data import streaming
from keras_lm.data.sources import describe, is_streamed
from keras_lm.data.token_batching import (
    bucket_by_tokens,
    check_batching,
    longest_side,
    token_batch_shapes,
)
from keras_lm.data.validation import check_positive_int, check_special_ids
from keras_lm.tokenizers.encoding import (
    encode_sources,
    encode_targets,
    target_tokenize,
)

AUTOTUNE = tf.data.AUTOTUNE


def make_translation_dataset(
    pairs,
    tokenizer,
    batch_size,
    max_length=128,
    static_shapes=False,
    bucket_boundaries=None,
    shuffle=True,
    shuffle_buffer=10_000,
    drop_remainder=None,
    truncate=True,
    cache=True,
    seed=None,
    max_tokens=None,
    input_context=None,
    on_bad_line="error",
):
    """Builds `(inputs, labels, sample_weight)` batches for `model.fit`.

    Tokenization runs in graph, once per pair, before the cache; after it
    come shuffle -> batch -> prefetch, so each epoch sees a fresh order.

    `pairs` may also be a corpus too large for memory, streamed inside
    `tf.data` (`keras_lm.data.sources`): TSV files (a path, a glob or a list
    of `pathlib.Path`, plain or `.gz`), a TFDS name, a `tf.data.Dataset` of
    `(source, target)` strings or TSV lines, or the directory of shards
    written by `prepare_shards` / `keras-lm prepare`. A stream is tokenized
    in chunks and never cached in memory; memory stays bounded by the
    shuffle buffer whatever the corpus size.

    With `max_tokens`, batches are formed by a token budget instead of a
    pair count (as fairseq and OpenNMT-tf do): each bucket of padded length
    L holds `max_tokens // L` pairs, so a batch never has more than
    `max_tokens` positions per side, and the number of batch shapes (so of
    XLA programs) is the number of buckets (`token_batch_shapes`).

    With `static_shapes=False` (default), pairs of similar length are
    batched together (`bucket_by_sequence_length`) and each batch is padded
    only to its own longest sequence, which wastes far less compute on
    padding. With `static_shapes=True`, every batch is padded to
    `max_length` and partial batches are dropped, so every shape is known
    up front, as TPUs and XLA need.

    Args:
        pairs: a non-empty sequence of `(source, target)` strings.
        tokenizer: a `keras_lm.tokenizers.SentencePieceTokenizer` with pad,
            EOS and BOS (decoder start) ids, shared by both languages.
        batch_size: int, pairs per batch.
        max_length: int, longest encoder or decoder sequence, EOS/BOS
            included.
        static_shapes: if True, pad to `max_length` with fixed batch size.
        bucket_boundaries: increasing sequence lengths separating the
            buckets; None picks `default_bucket_boundaries(max_length)`;
            `()` turns bucketing off (pad each batch to its longest). Not
            used with `static_shapes=True`.
        shuffle: whether to shuffle pairs (each epoch anew).
        shuffle_buffer: int, size of the shuffle buffer.
        drop_remainder: whether to drop the last partial batch (per bucket).
            None means `static_shapes`; it must be True with static shapes.
        truncate: if True, cut over-long sequences to `max_length` (sources
            keep their EOS, targets lose their EOS label); if False, drop
            pairs with either side too long.
        cache: whether to keep tokenized pairs in memory after the first
            epoch (in-memory pairs only; a stream is never cached).
        seed: optional int seed for the shuffle.
        max_tokens: optional int token budget per batch (instead of
            `batch_size`, which must then be None); needs `max_tokens >=
            max_length`. `drop_remainder` defaults to True with it, so the
            shapes are exactly `token_batch_shapes(...)`.
        input_context: optional `tf.distribute.InputContext`: a streamed
            corpus is split by files between input pipelines (workers).
            Without it, datasets of files carry `AutoShardPolicy.FILE`, so
            `strategy.experimental_distribute_dataset` shards by file.
        on_bad_line: for streamed text, `"error"` raises on a line that is
            not UTF-8, has no tab or an empty side, naming file and line;
            `"skip"` drops each such line and reports it on stderr.

    Returns:
        A `tf.data.Dataset` of `(inputs, labels, sample_weight)` with
        `inputs = {"encoder_token_ids": int32 [B, S],
        "decoder_token_ids": int32 [B, T]}`, `labels` int32 `[B, T]` and
        `sample_weight` float32 `[B, T]`.

    Example:
    >>> dataset = make_translation_dataset(pairs, tokenizer, batch_size=64)
    >>> model.fit(dataset, epochs=10)
    """
    check_batching(batch_size, max_tokens, max_length, static_shapes)
    check_positive_int("max_length", max_length, minimum=2)
    check_positive_int("shuffle_buffer", shuffle_buffer)
    special_ids = check_special_ids(tokenizer, needs=("pad_id", "eos_id", "start_id"))
    if drop_remainder is None:
        drop_remainder = static_shapes or max_tokens is not None
    if static_shapes and not drop_remainder:
        raise ValueError(
            "static_shapes=True needs drop_remainder=True: a partial last batch "
            "would have a different batch size. Received: drop_remainder=False"
        )
    if static_shapes and bucket_boundaries:
        raise ValueError(
            "bucket_boundaries cannot be combined with static_shapes=True, "
            "which pads every batch to max_length. Received: "
            f"bucket_boundaries={bucket_boundaries!r}"
        )
    if bucket_boundaries is None:
        bucket_boundaries = default_bucket_boundaries(max_length)
    _check_boundaries(bucket_boundaries)
    batching = dict(
        batch_size=batch_size,
        max_tokens=max_tokens,
        max_length=max_length,
        static_shapes=static_shapes,
        boundaries=bucket_boundaries,
        drop_remainder=drop_remainder,
        pad_id=special_ids.pad_id,
    )
    if is_streamed(pairs):
        examples = streaming.encode_pairs(
            streaming.translation_ids(
                pairs, tokenizer, shuffle, seed, input_context, on_bad_line
            ),
            special_ids,
            max_length,
            truncate,
        )
        _check_not_empty(examples, pairs)
        if shuffle:
            examples = examples.shuffle(shuffle_buffer, seed=seed)
        dataset = _batch(examples, **batching)
        dataset = dataset.map(_to_model_inputs, num_parallel_calls=AUTOTUNE)
        return dataset.prefetch(AUTOTUNE)

    sources, targets = _unzip(pairs)
    if static_shapes and len(sources) < batch_size:
        raise ValueError(
            f"Only {len(sources)} pairs for batch_size={batch_size} with "
            "static_shapes=True: no full batch can be made. Lower batch_size."
        )

    dataset = tf.data.Dataset.from_tensor_slices((sources, targets))
    tokenize_target = target_tokenize(tokenizer)
    dataset = dataset.map(
        lambda source, target: (tokenizer.tokenize(source), tokenize_target(target)),
        num_parallel_calls=AUTOTUNE,
    )
    if not truncate:
        # Room for the EOS or start id each side gains.
        dataset = dataset.filter(
            lambda source, target: tf.logical_and(
                tf.size(source) < max_length, tf.size(target) < max_length
            )
        )
    dataset = dataset.map(
        _encoder(special_ids, max_length), num_parallel_calls=AUTOTUNE
    )
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = _batch(dataset, **batching)
    dataset = dataset.map(_to_model_inputs, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def default_bucket_boundaries(max_length):
    """Bucket edges 8, 16, 24, 40, 64, 96, ... (about x1.5) up to max_length.

    Geometric spacing keeps padding to roughly a third of the shortest
    sequence in each bucket while giving few, well-filled buckets.
    """
    boundaries = []
    boundary = 8
    while boundary <= max_length:
        boundaries.append(boundary)
        boundary = max(boundary + 8, -(-int(boundary * 1.5) // 8) * 8)
    return boundaries


def _unzip(pairs):
    if isinstance(pairs, (str, bytes)) or not hasattr(pairs, "__len__"):
        raise TypeError(
            "pairs must be a list of (source, target) string tuples. "
            f"Received: pairs of type {type(pairs).__name__}"
        )
    if len(pairs) == 0:
        raise ValueError(
            "pairs is empty: there is nothing to train on. Pass a non-empty list "
            "of (source, target) string tuples, e.g. from load_tsv_pairs()."
        )
    for index, pair in enumerate(pairs):
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(side, str) for side in pair)
        ):
            raise TypeError(
                "pairs must hold (source, target) tuples of str. "
                f"Received at index {index}: {pair!r:.100}"
            )
    sources, targets = zip(*pairs)
    return list(sources), list(targets)


def _check_boundaries(boundaries):
    values = list(boundaries)
    if any(not isinstance(b, int) or b < 1 for b in values) or any(
        a >= b for a, b in zip(values, values[1:])
    ):
        raise ValueError(
            "bucket_boundaries must be strictly increasing positive integers, "
            f"e.g. [8, 16, 32]. Received: bucket_boundaries={boundaries!r}"
        )


def _encoder(special_ids, max_length):
    def encode(source_ids, target_ids):
        encoder = encode_sources(source_ids, special_ids, max_length)  # [S]
        decoder, labels = encode_targets(target_ids, special_ids, max_length)
        # Real label positions; padding_batch pads this with 0.
        weights = tf.ones_like(labels, tf.float32)  # [T]
        return encoder, decoder, labels, weights

    return encode


def _batch(
    dataset,
    batch_size,
    max_tokens,
    max_length,
    static_shapes,
    boundaries,
    drop_remainder,
    pad_id,
):
    padding_values = (pad_id, pad_id, pad_id, 0.0)
    if max_tokens is not None:
        shapes = token_batch_shapes(max_length, max_tokens, boundaries)
        return bucket_by_tokens(dataset, shapes, padding_values, drop_remainder)
    if static_shapes:
        return dataset.padded_batch(
            batch_size,
            padded_shapes=([max_length],) * 4,
            padding_values=padding_values,
            drop_remainder=True,
        )
    if not boundaries:
        return dataset.padded_batch(
            batch_size, padding_values=padding_values, drop_remainder=drop_remainder
        )
    # Every batch is padded to its bucket's upper edge, so a bucketed
    # dataset has one shape per bucket: XLA compiles a train step per shape,
    # and padding only to each batch's longest row recompiled it constantly.
    # The last edge is max_length + 1 so every sequence has a closed bucket.
    edges = [b for b in boundaries if b <= max_length] + [max_length + 1]
    return dataset.bucket_by_sequence_length(
        element_length_func=longest_side,
        bucket_boundaries=edges,
        bucket_batch_sizes=[batch_size] * (len(edges) + 1),
        padding_values=padding_values,
        pad_to_bucket_boundary=True,
        drop_remainder=drop_remainder,
    )


def _to_model_inputs(encoder, decoder, labels, weights):
    inputs = {"encoder_token_ids": encoder, "decoder_token_ids": decoder}
    return inputs, labels, weights


def _check_not_empty(examples, pairs):
    # One pair is enough to know the stream is not empty; reading it costs
    # one chunk, not a pass over the corpus.
    if not any(True for _ in examples.take(1)):
        raise ValueError(
            f"{describe(pairs)} gave no pair to train on. Check the path or the "
            "split, and that lines are 'source<TAB>target'."
        )
