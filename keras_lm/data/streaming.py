"""The streamed halves of the translation and LM pipelines.

Shapes: N = examples per chunk, S = source length, T = target length or LM
sequence length.

Text (or prepared shards) arrives in chunks of N examples; tokenization and
the special-ids encoding (`keras_lm.tokenizers.encoding`) run on whole ragged
chunks, then the chunks are split into examples. Nothing is cached, so
memory is bounded by chunk, shuffle and prefetch buffers.
"""

import tensorflow as tf

from keras_lm.data import shards, sources
from keras_lm.tokenizers.encoding import (
    encode_documents,
    encode_sources,
    encode_targets,
    target_tokenize,
)

AUTOTUNE = tf.data.AUTOTUNE


def translation_ids(source, tokenizer, shuffle, seed, input_context, on_bad_line):
    """`(source ids [N, None], target ids [N, None])` ragged int32 chunks."""
    if shards.is_shard_source(source):
        return shards.shard_chunks(
            source, "translation", tokenizer, shuffle, seed, input_context
        )
    text = sources.text_chunks(
        source, "translation", shuffle, seed, input_context, on_bad_line
    )
    tokenize_target = target_tokenize(tokenizer)
    return text.map(
        lambda src, tgt: (tokenizer.tokenize(src), tokenize_target(tgt)),
        num_parallel_calls=AUTOTUNE,
    )


def document_ids(source, tokenizer, shuffle, seed, input_context, on_bad_line):
    """Ragged int32 `[N, None]` chunks of document ids."""
    if shards.is_shard_source(source):
        return shards.shard_chunks(
            source, "lm", tokenizer, shuffle, seed, input_context
        )
    text = sources.text_chunks(source, "lm", shuffle, seed, input_context, on_bad_line)
    return text.map(tokenizer.tokenize, num_parallel_calls=AUTOTUNE)


def encode_pairs(chunks, special_ids, max_length, truncate):
    """Examples `(encoder [S], decoder [T], labels [T], weights [T])`, as the
    in-memory pipeline makes them, from chunks of ragged ids."""

    def encode(source_ids, target_ids):
        if not truncate:
            # Room for the EOS or start id each side gains.
            fits = (source_ids.row_lengths() < max_length) & (
                target_ids.row_lengths() < max_length
            )
            source_ids = tf.ragged.boolean_mask(source_ids, fits)
            target_ids = tf.ragged.boolean_mask(target_ids, fits)
        encoder = encode_sources(source_ids, special_ids, max_length)  # [N, S]
        decoder, labels = encode_targets(target_ids, special_ids, max_length)
        weights = tf.ones_like(labels, tf.float32)  # [N, T]
        return encoder, decoder, labels, weights

    # Unbatched rows of a ragged chunk are typed as ragged; an identity map
    # makes them the dense 1-D tensors that padded batching takes.
    return (
        chunks.map(encode, num_parallel_calls=AUTOTUNE)
        .unbatch()
        .map(lambda *row: tuple(map(tf.identity, row)))
    )


def pack_windows(chunks, special_ids, sequence_length):
    """Chunks of windows `[W, T + 1]` of the document stream, as
    `make_lm_dataset` cuts them in memory: starting every T tokens, so
    neighbours share one token.

    A running remainder carries the tokens that do not fill a window into
    the next chunk; only the remainder left at the end of the stream is
    dropped. Windows stay in chunks (`rebatch` splits them without a
    dataset element per window, which would cost more than the packing).
    """
    step = sequence_length
    offsets = tf.range(sequence_length + 1)[tf.newaxis]  # [1, T + 1]
    first = []
    if special_ids.text_start_id == special_ids.eos_id:
        # Each document's EOS starts the next; the first needs its own start.
        first = [special_ids.eos_id]

    def cut(remainder, ids):
        stream = tf.concat(
            [remainder, encode_documents(ids, special_ids).flat_values], 0
        )
        count = tf.maximum((tf.size(stream) - 1) // step, 0)
        starts = tf.range(count)[:, tf.newaxis] * step  # [W, 1]
        windows = tf.gather(stream, starts + offsets)  # [W, T + 1]
        return stream[count * step :], windows

    initial = tf.constant(first, tf.int32, shape=[len(first)])
    return chunks.scan(initial, cut)


def shuffle_blocks(chunks, block_size, seed):
    """Shuffles rows in consecutive blocks of `block_size`, each block by a
    new random permutation (new each epoch; the same ones for the same
    `seed`).

    A shuffle buffer of the same size mixes rows over the same distance, but
    costs a dataset element per row; a block costs one copy and one gather.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def permute(block, random):
        key = tf.stack([random, tf.constant(0, tf.int64)])
        return tf.random.experimental.stateless_shuffle(block, seed=key)

    blocks = tf.data.Dataset.zip(chunks.rebatch(block_size), seeds)
    return blocks.map(permute, num_parallel_calls=AUTOTUNE, deterministic=True)


def count_documents(chunks, special_ids):
    """`(documents, tokens)` of a stream, tokens as `pack_windows` sees them."""
    per_document = 1 if special_ids.text_start_id == special_ids.eos_id else 2
    documents, ids = chunks.map(
        lambda ids: (ids.nrows(tf.int64), tf.size(ids.flat_values, tf.int64))
    ).reduce(
        (tf.constant(0, tf.int64), tf.constant(0, tf.int64)),
        lambda total, chunk: (total[0] + chunk[0], total[1] + chunk[1]),
    )
    documents, ids = int(documents), int(ids)
    return documents, ids + per_document * documents + (2 - per_document)
