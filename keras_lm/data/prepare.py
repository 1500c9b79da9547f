"""`prepare_shards` (`keras-lm prepare`): text files to shards of token ids.

Reads text files in parallel, one process per file, and writes one shard per
input file (`keras_lm.data.shards` describes the format) and
`manifest.json`. A shard is written to a temporary name and renamed, then
its entry `<shard>.json` is written; a rerun after an interruption skips
every shard that has its entry. Lines are parsed as the streaming pipelines
parse them (`keras_lm.data.sources`), so shards give exactly the ids of
in-graph tokenization.
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
from keras_lm.data.shards import (
    FEATURES,
    FORMAT,
    KINDS,
    LENGTHS,
    MANIFEST,
    MAX_BLOCK_TOKENS,
    proto_bytes,
)

logger = logging.getLogger("keras_lm.data")

_ENCODE_CHUNK = 1000


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
    proto = proto_bytes(tokenizer)
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


def _write_shard(task):
    """Tokenizes one input file into one shard; runs in a worker process."""
    import sentencepiece as spm

    path, shard, proto, digest, kind, on_bad_line = task
    processor = spm.SentencePieceProcessor(model_proto=proto)
    names = FEATURES[kind]
    tokens = [0] * len(names)
    records, documents, skipped = 0, 0, {}
    partial = shard + ".partial"
    with tf.io.TFRecordWriter(partial) as writer:
        for chunk in _parsed_chunks(path, kind, on_bad_line, skipped):
            encoded = [processor.encode(list(column)) for column in zip(*chunk)]
            if kind == "lm":
                blocks = list(_blocks(encoded[0]))
                for block in blocks:
                    writer.write(_block_example(block))
            else:
                blocks = list(zip(*encoded))
                for row in blocks:
                    writer.write(_example(names, row))
            for i, column in enumerate(encoded):
                tokens[i] += sum(map(len, column))
            records += len(blocks)
            documents += len(chunk)
    os.replace(partial, shard)
    entry = {
        "file": os.path.basename(shard),
        "source": os.path.abspath(path),
        "source_bytes": os.path.getsize(path),
        "format": FORMAT,
        "records": records,
        "documents": documents,
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
    return _serialize(dict(zip(names, row)))


def _serialize(arrays):
    # Raw little-endian int32: decoding a chunk is one memcpy, several times
    # faster than parsing int64 lists.
    feature = {
        name: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[np.asarray(ids, "<i4").tobytes()])
        )
        for name, ids in arrays.items()
    }
    # Deterministic: map fields in key order, so a shard's bytes do not
    # depend on the process (hash seed) that wrote it.
    return tf.train.Example(
        features=tf.train.Features(feature=feature)
    ).SerializeToString(deterministic=True)


def _blocks(documents):
    """Runs of consecutive documents' ids, each under `MAX_BLOCK_TOKENS` ids
    unless one document alone is longer."""
    block, size = [], 0
    for ids in documents:
        if block and size + len(ids) > MAX_BLOCK_TOKENS:
            yield block
            block, size = [], 0
        block.append(ids)
        size += len(ids)
    if block:
        yield block


def _block_example(block):
    ids = np.concatenate([np.asarray(ids, "<i4") for ids in block])
    lengths = np.asarray([len(ids) for ids in block], "<i4")
    return _serialize({"ids": ids, LENGTHS: lengths})


def _read_entry(shard):
    if not (os.path.isfile(shard + ".json") and os.path.isfile(shard)):
        return None
    with open(shard + ".json", encoding="utf-8") as f:
        return json.load(f)


def _check_entry(entry, shard, path, digest):
    if entry.get("format") != FORMAT:
        raise ValueError(
            f"'{shard}' was written by another keras_lm version (shard format "
            f"{entry.get('format', 'keras_lm.shards/1')!r}, this one writes "
            f"{FORMAT!r}). Prepare into an empty directory, or delete the old "
            "shards."
        )
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
        "documents": sum(entry["documents"] for entry in entries),
        "tokens": totals,
        "skipped": skipped,
        "shards": entries,
    }


def _atomic_write(path, text):
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(partial, path)
