"""Prepared shards: a corpus tokenized once into TFRecord files of token ids.

`keras_lm.data.prepare` writes them (`prepare_shards`, `keras-lm prepare`):
one shard per input file plus `manifest.json`, which names the tokenizer
(SHA-256 of its model proto) and, per shard, the input file, the records,
documents and tokens written, the lines skipped and the shard's size. Records
hold the tokenizer's raw ids (no BOS/EOS: the pipelines add the special ids
when they read), as `tf.train.Example`s of little-endian int32 bytes:
- translation: one pair per record, features `source` and `target`;
- LM: a block of consecutive documents per record (up to about a thousand
  documents or `MAX_BLOCK_TOKENS` ids), features `ids` (their ids, joined)
  and `lengths` (ids per document). Reading a record per document cost more
  than everything else in the LM pipeline together.

Format 1 (one LM document per record, no `lengths`) is still read.

This module reads them: it checks the manifest (kind, tokenizer, every
shard's size) and streams chunks of ragged ids into the pipelines.
"""

import hashlib
import json
import os

import tensorflow as tf

from keras_lm.data import sources

FORMAT = "keras_lm.shards/2"
READABLE_FORMATS = ("keras_lm.shards/1", FORMAT)
MAX_BLOCK_TOKENS = 1 << 20
MANIFEST = "manifest.json"
KINDS = ("translation", "lm")
FEATURES = {"translation": ("source", "target"), "lm": ("ids",)}
# Format 2: ids per document within an LM block.
LENGTHS = "lengths"
AUTOTUNE = tf.data.AUTOTUNE


def is_shard_source(source):
    """Whether `source` names prepared shards (their directory or manifest)."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = os.fspath(source)
    return os.path.basename(path) == MANIFEST or os.path.isfile(
        os.path.join(path, MANIFEST)
    )


def load_manifest(source, kind=None, tokenizer=None):
    """The manifest of prepared shards, after checking kind, tokenizer and
    that every shard is there with the size it was written with."""
    path = os.fspath(source)
    if os.path.basename(path) != MANIFEST:
        path = os.path.join(path, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read the shard manifest '{path}': {error}") from None
    if manifest.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"'{path}' is not a keras_lm shard manifest (format "
            f"{manifest.get('format')!r}; this version reads "
            f"{', '.join(READABLE_FORMATS)}). Write "
            "shards with keras_lm.data.prepare_shards or keras-lm prepare."
        )
    directory = os.path.dirname(path)
    if kind is not None and manifest["kind"] != kind:
        raise ValueError(
            f"The shards in '{directory}' hold {manifest['kind']} data; this "
            f"pipeline needs {kind} data."
        )
    if tokenizer is not None:
        digest = hashlib.sha256(proto_bytes(tokenizer)).hexdigest()
        if manifest["tokenizer_sha256"] != digest:
            first = os.path.join(directory, manifest["shards"][0]["file"])
            raise ValueError(
                f"The shards in '{directory}' (e.g. '{first}') were written with "
                f"another tokenizer (sha256 {manifest['tokenizer_sha256'][:12]}..., "
                f"this one is {digest[:12]}...). Pass the tokenizer they were "
                "prepared with, or prepare them again with this one."
            )
    for entry in manifest["shards"]:
        shard = os.path.join(directory, entry["file"])
        size = os.path.getsize(shard) if os.path.isfile(shard) else None
        if size != entry["bytes"]:
            state = "missing" if size is None else f"{size} bytes"
            raise ValueError(
                f"Shard '{shard}' is truncated or replaced: {state}, the manifest "
                f"says {entry['bytes']} bytes. Delete it and its .json entry and "
                "rerun prepare to write it again."
            )
    manifest["directory"] = directory
    return manifest


def shard_chunks(source, kind, tokenizer, shuffle, seed, input_context):
    """Chunks of ragged int32 ids read from prepared shards: `(source,
    target)` for translation, `ids` for LM."""
    manifest = load_manifest(source, kind, tokenizer)
    files = [
        os.path.join(manifest["directory"], entry["file"])
        for entry in manifest["shards"]
        if entry["records"]
    ]
    files = sources.shard_files(files, input_context)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(8, len(files)) if shuffle else 1,
        num_parallel_calls=AUTOTUNE if shuffle else None,
        deterministic=True if shuffle else None,
    )
    dataset = sources.with_file_sharding(dataset)
    if kind == "lm" and manifest["format"] == FORMAT:
        # Each record is already a chunk of documents.
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in ("ids", LENGTHS)}

        def parse_block(record):
            features = tf.io.parse_single_example(record, spec)
            return tf.RaggedTensor.from_row_lengths(
                tf.io.decode_raw(features["ids"], tf.int32),
                tf.io.decode_raw(features[LENGTHS], tf.int32),
            )

        return dataset.map(parse_block, num_parallel_calls=AUTOTUNE)
    names = FEATURES[kind]
    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in names}

    def parse(records):
        features = tf.io.parse_example(records, spec)
        ids = tuple(_ragged_ids(features[name]) for name in names)
        return ids if len(ids) > 1 else ids[0]

    return dataset.batch(sources.CHUNK).map(parse, num_parallel_calls=AUTOTUNE)


def _ragged_ids(raw):
    """Ragged int32 `[N, None]` from N strings of little-endian int32 ids,
    decoded in one call over the joined chunk."""
    values = tf.io.decode_raw(tf.strings.reduce_join(raw), tf.int32)
    return tf.RaggedTensor.from_row_lengths(values, tf.strings.length(raw) // 4)


def document_counts(source, special_ids, tokenizer, input_context=None):
    """`(documents, tokens)` of LM shards from the manifest, tokens counted as
    `streaming.pack_windows` sees them (special ids included)."""
    manifest = load_manifest(source, "lm", tokenizer)
    entries = [entry for entry in manifest["shards"] if entry["records"]]
    if input_context is not None:
        entries = entries[
            input_context.input_pipeline_id :: input_context.num_input_pipelines
        ]
    # Format 1 wrote one document per record.
    documents = sum(entry.get("documents", entry["records"]) for entry in entries)
    ids = sum(entry["tokens"]["ids"] for entry in entries)
    if special_ids.text_start_id == special_ids.eos_id:
        return documents, ids + documents + 1
    return documents, ids + 2 * documents


def verify_shards(source):
    """Reads every shard in full; raises `ValueError` naming the first one
    that is corrupt or holds another number of records than its entry."""
    manifest = load_manifest(source)
    for entry in manifest["shards"]:
        shard = os.path.join(manifest["directory"], entry["file"])
        records = 0
        try:
            for _ in tf.data.TFRecordDataset(shard):
                records += 1
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError) as error:
            raise ValueError(
                f"Shard '{shard}' is corrupt after {records} records "
                f"({error.message.splitlines()[0]}). Delete it and its .json entry "
                "and rerun prepare."
            ) from None
        if records != entry["records"]:
            raise ValueError(
                f"Shard '{shard}' holds {records} records, its entry says "
                f"{entry['records']}. Delete it and rerun prepare."
            )
    return manifest


def proto_bytes(tokenizer):
    if isinstance(tokenizer, (bytes, bytearray)):
        return bytes(tokenizer)
    if isinstance(tokenizer, (str, os.PathLike)):
        with open(tokenizer, "rb") as f:
            return f.read()
    proto = getattr(tokenizer, "proto", None)
    if not isinstance(proto, bytes):
        raise TypeError(
            "tokenizer must be a SentencePieceTokenizer, its proto bytes or the "
            f"path of a .model file. Received: {type(tokenizer).__name__}"
        )
    return proto
