"""tf.data pipeline for causal language modelling: text in, packed blocks out.

Shapes: B = batch size, T = sequence_length.

Documents are tokenized, each as `[BOS] + ids + [EOS]` (the one start-of-text
convention of decoder-only models, `keras_lm.tokenizers.encoding`), and
concatenated into one token stream. The stream is cut into windows of T + 1
tokens that start every T tokens, so consecutive windows share one boundary
token and every token after the first is a label exactly once. A window gives
`token_ids = window[:-1]` and `labels = window[1:]`. There is no padding;
the tail that does not fill a last window is dropped and counted.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_lm.data import shards, streaming
from keras_lm.data.sources import describe, is_streamed
from keras_lm.data.validation import check_positive_int, check_special_ids
from keras_lm.tokenizers.encoding import encode_documents
from keras_lm.tokenizers.text_source import iter_text_lines

AUTOTUNE = tf.data.AUTOTUNE
_TOKENIZE_CHUNK = 1024


@dataclasses.dataclass
class PackingReport:
    """What packing kept, returned by `make_lm_dataset(return_report=True)`.

    Attributes:
        documents: documents (non-empty lines or strings) read.
        tokens: tokens in the stream, each document's start and EOS included.
        blocks: windows of `sequence_length + 1` tokens made.
        dropped_tokens: tokens at the end of the stream that are in no window
            (`tokens == blocks * sequence_length + 1 + dropped_tokens`).
        blocks_dropped_per_epoch: windows left out of each epoch by
            `drop_remainder` (which ones changes with the shuffle).
    """

    documents: int
    tokens: int
    blocks: int
    dropped_tokens: int
    blocks_dropped_per_epoch: int


def make_lm_dataset(
    texts_or_files,
    tokenizer,
    sequence_length,
    batch_size,
    shuffle=True,
    shuffle_buffer=10_000,
    drop_remainder=True,
    seed=None,
    return_report=False,
    input_context=None,
    on_bad_line="error",
):
    """Builds `({"token_ids"}, labels, sample_weight)` batches for `model.fit`.

    Documents given as a list of strings become one token stream in memory
    when this is called (about 4 bytes per token), so epochs only shuffle
    and batch. Files, TFDS datasets, `tf.data.Dataset`s and prepared shards
    are streamed instead: read, tokenized and packed inside `tf.data`, each
    epoch anew, with memory bounded by the buffers. Both cut the same
    windows. Windows are fixed length, so with `drop_remainder=True` every
    shape is static.

    Args:
        texts_or_files: documents as a list (or iterable) of `str`, kept in
            memory; or, streamed: text files with one document per line (a
            path, a glob or a list of `pathlib.Path`, plain or `.gz`), a TFDS
            name (its `"text"` feature), a `tf.data.Dataset` of strings, or
            the directory of shards from `prepare_shards(kind="lm")`. Empty
            documents are skipped.
        tokenizer: a `keras_lm.tokenizers.SentencePieceTokenizer` with an
            EOS id.
        sequence_length: int, tokens per example (T).
        batch_size: int, examples per batch (B).
        shuffle: whether to shuffle windows (each epoch anew).
        shuffle_buffer: int, windows mixed together: the size of the
            shuffle buffer in memory; for a stream, the size of the blocks
            of consecutive windows that are each shuffled whole (same reach,
            without a `tf.data` element per window).
        drop_remainder: whether to drop the last partial batch.
        seed: optional int seed for the shuffle.
        return_report: if True, also return a `PackingReport`. For a stream
            this costs one pass over the corpus (free for prepared shards,
            whose manifest holds the counts).
        input_context: optional `tf.distribute.InputContext`: a streamed
            corpus is split by files between input pipelines (workers).
        on_bad_line: for streamed text, `"error"` raises on a line that is
            not valid UTF-8, naming file and line; `"skip"` drops each such
            line and reports it on stderr.

    Returns:
        A `tf.data.Dataset` of `({"token_ids": int32 [B, T]}, labels int32
        [B, T], sample_weight float32 [B, T])`, or `(dataset, report)`.

    Example:
    >>> dataset = make_lm_dataset(texts, tokenizer, sequence_length=128,
    ...                           batch_size=32)
    >>> model.fit(dataset, epochs=1)
    """
    check_positive_int("sequence_length", sequence_length)
    check_positive_int("batch_size", batch_size)
    check_positive_int("shuffle_buffer", shuffle_buffer)
    special_ids = check_special_ids(tokenizer, needs=("eos_id",))
    if is_streamed(texts_or_files):
        return _streamed(
            texts_or_files,
            tokenizer,
            special_ids,
            sequence_length,
            batch_size,
            shuffle,
            shuffle_buffer,
            drop_remainder,
            seed,
            return_report,
            input_context,
            on_bad_line,
        )
    stream, documents = _token_stream(texts_or_files, tokenizer, special_ids)
    blocks = (stream.size - 1) // sequence_length
    if blocks < 1 or (drop_remainder and blocks < batch_size):
        raise ValueError(
            f"The corpus gives {stream.size} tokens ({documents} documents), "
            f"{max(blocks, 0)} windows of sequence_length + 1 = "
            f"{sequence_length + 1} tokens, not enough for one batch of "
            f"batch_size={batch_size}. Pass more text, or lower sequence_length "
            "or batch_size."
        )
    starts = np.arange(blocks)[:, None] * sequence_length
    windows = stream[starts + np.arange(sequence_length + 1)]  # [N, T + 1]
    report = _report(
        documents, int(stream.size), sequence_length, batch_size, drop_remainder
    )

    dataset = tf.data.Dataset.from_tensor_slices(windows)
    if shuffle:
        dataset = dataset.shuffle(min(shuffle_buffer, blocks), seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(_to_model_inputs, num_parallel_calls=AUTOTUNE)
    dataset = dataset.prefetch(AUTOTUNE)
    return (dataset, report) if return_report else dataset


def _streamed(
    source,
    tokenizer,
    special_ids,
    sequence_length,
    batch_size,
    shuffle,
    shuffle_buffer,
    drop_remainder,
    seed,
    return_report,
    input_context,
    on_bad_line,
):
    def documents():
        return streaming.document_ids(
            source, tokenizer, shuffle, seed, input_context, on_bad_line
        )

    windows = streaming.pack_windows(documents(), special_ids, sequence_length)
    needed = batch_size if drop_remainder else 1
    # Reading one batch's windows costs about one chunk of documents, not a
    # pass over the corpus.
    found = 0
    for chunk in windows:
        found += int(chunk.shape[0])
        if found >= needed:
            break
    if found < needed:
        raise ValueError(
            f"{describe(source)} gives {found} windows of sequence_length + 1 = "
            f"{sequence_length + 1} tokens, not enough for one batch of "
            f"batch_size={batch_size} (or no non-empty document). Pass more "
            "text, or lower sequence_length or batch_size."
        )
    if shuffle:
        windows = streaming.shuffle_blocks(windows, shuffle_buffer, seed)
    dataset = windows.rebatch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(_to_model_inputs, num_parallel_calls=AUTOTUNE)
    dataset = dataset.prefetch(AUTOTUNE)
    if not return_report:
        return dataset
    if shards.is_shard_source(source):
        count, tokens = shards.document_counts(
            source, special_ids, tokenizer, input_context
        )
    else:
        count, tokens = streaming.count_documents(documents(), special_ids)
    report = _report(count, tokens, sequence_length, batch_size, drop_remainder)
    return dataset, report


def _report(documents, tokens, sequence_length, batch_size, drop_remainder):
    blocks = max((tokens - 1) // sequence_length, 0)
    return PackingReport(
        documents=documents,
        tokens=tokens,
        blocks=blocks,
        dropped_tokens=tokens - 1 - blocks * sequence_length,
        blocks_dropped_per_epoch=blocks % batch_size if drop_remainder else 0,
    )


def _token_stream(texts_or_files, tokenizer, special_ids):
    """All documents' ids, encoded by `encode_documents`, as one int32 array."""
    pieces = []
    if special_ids.text_start_id == special_ids.eos_id:
        # Each document's EOS starts the next; the first needs its own start.
        pieces.append(np.array([special_ids.eos_id], np.int32))
    documents = 0
    chunk = []
    for text in iter_text_lines(texts_or_files):
        chunk.append(text)
        if len(chunk) == _TOKENIZE_CHUNK:
            pieces.append(_encode(tokenizer, special_ids, chunk))
            documents += len(chunk)
            chunk = []
    if chunk:
        pieces.append(_encode(tokenizer, special_ids, chunk))
        documents += len(chunk)
    if not documents:
        raise ValueError(
            "texts_or_files gave no non-empty document. Pass at least one "
            "non-empty string or a text file with content."
        )
    return np.concatenate(pieces), documents


def _encode(tokenizer, special_ids, texts):
    ids = tokenizer.tokenize(tf.constant(texts))  # ragged [D, None]
    ids = encode_documents(ids, special_ids)
    return ids.flat_values.numpy().astype(np.int32)


def _to_model_inputs(windows):
    token_ids = windows[:, :-1]  # [B, T]
    labels = windows[:, 1:]  # [B, T]
    # Packed windows hold no padding: every label is real.
    sample_weight = tf.ones_like(labels, tf.float32)
    return {"token_ids": token_ids}, labels, sample_weight
