"""Prepared shards: a corpus tokenized once into TFRecord files of token ids.

`prepare_shards` (and `keras-lm prepare`) reads text files in parallel, one
process per file, and writes one shard per input file plus `manifest.json`:
the tokenizer (SHA-256 of its model proto), the special ids, and per shard
the input file, the records and tokens written, the lines skipped and the
shard's size. A shard is written to a temporary name and renamed, then its
entry `<shard>.json` is written; a rerun after an interruption skips every
shard that has its entry. Records hold the tokenizer's raw ids (no BOS/EOS:
the pipelines add the special ids when they read), as `tf.train.Example`s
whose bytes features `source`/`target` (translation) or `ids` (LM) hold
little-endian int32 ids.

Lines are parsed as the streaming pipelines parse them
(`keras_lm.data.sources`), so shards give exactly the ids of in-graph
tokenization.
"""

import gzip
import hashlib
import json
import logging
import multiprocessing
import os

import numpy as np
import tensorflow as tf

from keras_lm.data import sources

logger = logging.getLogger("keras_lm.data")

FORMAT = "keras_lm.shards/1"
MANIFEST = "manifest.json"
KINDS = ("translation", "lm")
FEATURES = {"translation": ("source", "target"), "lm": ("ids",)}
_ENCODE_CHUNK = 1000
AUTOTUNE = tf.data.AUTOTUNE


def prepare_shards(
    inputs,
    tokenizer,
    output_dir,
    kind="translation",
    num_workers=None,
    on_bad_line="error",
):
    """Tokenizes text files into sharded TFRecords of token ids, resumably.

    Args:
        inputs: a path, a glob, or a list of paths of text files (plain or
            `.gz`): `source<TAB>target` lines for `kind="translation"`, one
            document per line for `kind="lm"`.
        tokenizer: a `SentencePieceTokenizer`, the proto `bytes`, or the path
            of a `.model` file.
        output_dir: directory for the shards and `manifest.json`.
        kind: `"translation"` or `"lm"`.
        num_workers: processes tokenizing files in parallel (default: the
            CPU count, at most one per file).
        on_bad_line: `"error"` (raise naming file and line) or `"skip"`
            (skip and count, per reason, in the manifest).

    Returns:
        The manifest, as a dict (also written to `output_dir/manifest.json`).

    Example:
    >>> prepare_shards("wmt/*.tsv.gz", tokenizer, "shards/wmt", num_workers=8)
    >>> dataset = make_translation_dataset("shards/wmt", tokenizer,
    ...                                    batch_size=None, max_tokens=8192)
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}. Received: kind={kind!r}")
    sources.check_on_bad_line(on_bad_line)
    proto = _proto_bytes(tokenizer)
    digest = hashlib.sha256(proto).hexdigest()
    files = sources.expand_files(inputs)
    os.makedirs(output_dir, exist_ok=True)
    tasks, done = [], []
    for index, path in enumerate(files):
        shard = os.path.join(
            output_dir, f"shard-{index:05d}-of-{len(files):05d}.tfrecord"
        )
        entry = _read_entry(shard)
        if entry is not None:
            _check_entry(entry, shard, path, digest)
            done.append(entry)
            continue
        tasks.append((path, shard, proto, digest, kind, on_bad_line))
    if done:
        logger.info(
            "prepare_shards: %d of %d shards already done", len(done), len(files)
        )
    workers = min(num_workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1:
        written = [_write_shard(task) for task in tasks]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            written = pool.map(_write_shard, tasks, chunksize=1)
    entries = sorted(done + written, key=lambda entry: entry["file"])
    manifest = _manifest(entries, kind, digest, proto)
    _atomic_write(os.path.join(output_dir, MANIFEST), json.dumps(manifest, indent=1))
    return manifest


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
    if manifest.get("format") != FORMAT:
        raise ValueError(
            f"'{path}' is not a keras_lm shard manifest ({FORMAT!r}). Write "
            "shards with keras_lm.data.prepare_shards or keras-lm prepare."
        )
    directory = os.path.dirname(path)
    if kind is not None and manifest["kind"] != kind:
        raise ValueError(
            f"The shards in '{directory}' hold {manifest['kind']} data; this "
            f"pipeline needs {kind} data."
        )
    if tokenizer is not None:
        digest = hashlib.sha256(_proto_bytes(tokenizer)).hexdigest()
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
    documents = sum(entry["records"] for entry in entries)
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


def _write_shard(task):
    """Tokenizes one input file into one shard; runs in a worker process."""
    import sentencepiece as spm

    path, shard, proto, digest, kind, on_bad_line = task
    processor = spm.SentencePieceProcessor(model_proto=proto)
    names = FEATURES[kind]
    tokens = [0] * len(names)
    records, skipped = 0, {}
    partial = shard + ".partial"
    with tf.io.TFRecordWriter(partial) as writer:
        for chunk in _parsed_chunks(path, kind, on_bad_line, skipped):
            encoded = [processor.encode(list(column)) for column in zip(*chunk)]
            for row in zip(*encoded):
                writer.write(_example(names, row))
                for i, ids in enumerate(row):
                    tokens[i] += len(ids)
                records += 1
    os.replace(partial, shard)
    entry = {
        "file": os.path.basename(shard),
        "source": os.path.abspath(path),
        "source_bytes": os.path.getsize(path),
        "records": records,
        "tokens": dict(zip(names, tokens)),
        "skipped": skipped,
        "bytes": os.path.getsize(shard),
        "tokenizer_sha256": digest,
    }
    _atomic_write(shard + ".json", json.dumps(entry))
    if skipped:
        logger.warning("prepare_shards: '%s': skipped %s", path, skipped)
    return entry


def _parsed_chunks(path, kind, on_bad_line, skipped):
    """Lists of parsed rows, as `sources.parse_tsv` / `parse_documents`."""
    opener = gzip.open if path.endswith(".gz") else open
    chunk = []
    with opener(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            row, reason = parse_line(raw, kind)
            if reason is not None:
                if on_bad_line == "error":
                    raise ValueError(
                        f"keras_lm: bad line at {path}:{number}: {reason}. Fix "
                        "the line, or pass on_bad_line='skip' to skip and count "
                        "such lines."
                    )
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            if row is not None:
                chunk.append(row)
            if len(chunk) == _ENCODE_CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def parse_line(raw, kind):
    """`(row, None)`, `(None, None)` for a blank line, or `(None, reason)`."""
    line = raw.strip()
    if not line:
        return None, None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    if kind == "lm":
        return (text,), None
    columns = text.split("\t")
    if len(columns) < 2:
        return None, "no tab between source and target"
    source, target = (_strip_ascii(side) for side in columns[:2])
    if not source or not target:
        return None, "an empty side"
    return (source, target), None


def _strip_ascii(text):
    # tf.strings.strip strips ASCII whitespace only.
    return text.strip(" \t\n\r\x0b\x0c")


def _example(names, row):
    # Raw little-endian int32: decoding a chunk is one memcpy, several times
    # faster than parsing int64 lists.
    feature = {
        name: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[np.asarray(ids, "<i4").tobytes()])
        )
        for name, ids in zip(names, row)
    }
    # Deterministic: map fields in key order, so a shard's bytes do not
    # depend on the process (hash seed) that wrote it.
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString(deterministic=True)


def _read_entry(shard):
    if not (os.path.isfile(shard + ".json") and os.path.isfile(shard)):
        return None
    with open(shard + ".json", encoding="utf-8") as f:
        return json.load(f)


def _check_entry(entry, shard, path, digest):
    if entry["tokenizer_sha256"] != digest:
        raise ValueError(
            f"'{shard}' was written with another tokenizer. Prepare into an empty "
            "directory, or delete the old shards."
        )
    if entry["source"] != os.path.abspath(path) or entry[
        "source_bytes"
    ] != os.path.getsize(path):
        raise ValueError(
            f"'{shard}' was written from '{entry['source']}' "
            f"({entry['source_bytes']} bytes), not from '{path}' as now. Prepare "
            "into an empty directory, or delete the old shards."
        )


def _manifest(entries, kind, digest, proto):
    import sentencepiece as spm

    processor = spm.SentencePieceProcessor(model_proto=proto)
    totals, skipped = {}, {}
    for entry in entries:
        for name, count in entry["tokens"].items():
            totals[name] = totals.get(name, 0) + count
        for reason, count in entry["skipped"].items():
            skipped[reason] = skipped.get(reason, 0) + count
    return {
        "format": FORMAT,
        "kind": kind,
        "tokenizer_sha256": digest,
        "vocabulary_size": processor.get_piece_size(),
        "records": sum(entry["records"] for entry in entries),
        "tokens": totals,
        "skipped": skipped,
        "shards": entries,
    }


def _proto_bytes(tokenizer):
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


def _atomic_write(path, text):
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(partial, path)
