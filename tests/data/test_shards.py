"""Prepared shards: the ids of in-graph tokenization, resumable, and clear
errors for shards of another tokenizer or damaged ones."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from corpus_helpers import batches, make_pairs, write_lines, write_tsv

from keras_lm import cli
from keras_lm.data import (
    load_manifest,
    make_lm_dataset,
    make_translation_dataset,
    prepare_shards,
    verify_shards,
)
from keras_lm.data import prepare as prepare_module
from keras_lm.tokenizers import SentencePieceTokenizer, train_sentencepiece

PAIRS = make_pairs(120, seed=7)


@pytest.fixture
def corpus(tmp_path):
    write_tsv(tmp_path / "a.tsv", PAIRS[:50])
    write_tsv(tmp_path / "b.tsv.gz", PAIRS[50:])
    return str(tmp_path / "*.tsv*")


def test_shards_give_the_ids_of_in_graph_tokenization(tokenizer, corpus, tmp_path):
    manifest = prepare_shards(corpus, tokenizer, tmp_path / "shards")
    assert manifest["records"] == len(PAIRS)
    assert [entry["records"] for entry in manifest["shards"]] == [50, 70]
    kwargs = dict(batch_size=8, max_length=16, shuffle=False)
    from_shards = make_translation_dataset(tmp_path / "shards", tokenizer, **kwargs)
    from_text = make_translation_dataset(corpus, tokenizer, **kwargs)
    expected = batches(from_text)
    assert batches(from_shards) == expected
    assert batches(make_translation_dataset(PAIRS, tokenizer, **kwargs)) == expected


def test_lm_shards_pack_like_text_and_report_from_the_manifest(tokenizer, tmp_path):
    documents = [f"{s} . {t}" for s, t in PAIRS]
    write_lines(tmp_path / "docs-0.txt", documents[:60] + ["  "])
    write_lines(tmp_path / "docs-1.txt.gz", documents[60:])
    prepare_shards(str(tmp_path / "docs-*"), tokenizer, tmp_path / "lm", kind="lm")
    kwargs = dict(sequence_length=11, batch_size=4, shuffle=False, return_report=True)
    from_shards, report = make_lm_dataset(str(tmp_path / "lm"), tokenizer, **kwargs)
    in_memory, expected = make_lm_dataset(documents, tokenizer, **kwargs)
    assert report == expected
    assert batches(from_shards) == batches(in_memory)


def test_lm_shards_hold_blocks_of_documents(tokenizer, tmp_path, monkeypatch):
    # Blocks of at most 40 ids: several records per shard, none per document.
    monkeypatch.setattr(prepare_module, "MAX_BLOCK_TOKENS", 40)
    documents = [f"{s} . {t}" for s, t in PAIRS]
    path = write_lines(tmp_path / "docs.txt", documents)
    manifest = prepare_shards(
        path, tokenizer, tmp_path / "lm", kind="lm", num_workers=1
    )
    (entry,) = manifest["shards"]
    assert entry["documents"] == manifest["documents"] == len(documents)
    assert 1 < entry["records"] < len(documents)
    lengths = []
    for record in tf.data.TFRecordDataset(str(tmp_path / "lm" / entry["file"])):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        ids = np.frombuffer(features["ids"].bytes_list.value[0], "<i4")
        block = np.frombuffer(features["lengths"].bytes_list.value[0], "<i4")
        assert block.sum() == ids.size
        assert ids.size <= 40 or block.size == 1
        lengths += block.tolist()
    assert lengths == [len(tokenizer.tokenize(d).numpy()) for d in documents]
    kwargs = dict(sequence_length=7, batch_size=3, shuffle=False, return_report=True)
    from_shards, report = make_lm_dataset(str(tmp_path / "lm"), tokenizer, **kwargs)
    in_memory, expected = make_lm_dataset(documents, tokenizer, **kwargs)
    assert report == expected
    assert batches(from_shards) == batches(in_memory)


def _rewrite_as_format_1(directory):
    """What an earlier keras_lm wrote: one LM document per record, `ids` only."""
    manifest = json.loads((directory / "manifest.json").read_text())
    for entry in manifest["shards"]:
        shard = directory / entry["file"]
        documents = []
        for record in tf.data.TFRecordDataset(str(shard)):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            ids = np.frombuffer(features["ids"].bytes_list.value[0], "<i4")
            lengths = np.frombuffer(features["lengths"].bytes_list.value[0], "<i4")
            documents += np.split(ids, np.cumsum(lengths)[:-1])
        with tf.io.TFRecordWriter(str(shard)) as writer:
            for ids in documents:
                feature = {"ids": _bytes_feature(ids.astype("<i4").tobytes())}
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writer.write(example.SerializeToString())
        for name in ("format", "documents"):
            del entry[name]
        entry.update(records=len(documents), bytes=shard.stat().st_size)
        (directory / f"{entry['file']}.json").write_text(json.dumps(entry))
    del manifest["documents"]
    manifest.update(format="keras_lm.shards/1")
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def test_format_1_lm_shards_are_still_read(tokenizer, tmp_path):
    documents = [f"{s} . {t}" for s, t in PAIRS]
    path = write_lines(tmp_path / "docs.txt", documents)
    prepare_shards(path, tokenizer, tmp_path / "lm", kind="lm", num_workers=1)
    _rewrite_as_format_1(tmp_path / "lm")
    kwargs = dict(sequence_length=7, batch_size=3, shuffle=False, return_report=True)
    old, report = make_lm_dataset(str(tmp_path / "lm"), tokenizer, **kwargs)
    in_memory, expected = make_lm_dataset(documents, tokenizer, **kwargs)
    assert report == expected
    assert batches(old) == batches(in_memory)
    # A rerun of prepare would mix the two formats in one manifest.
    with pytest.raises(ValueError, match=r"another keras_lm version.*shards/1"):
        prepare_shards(path, tokenizer, tmp_path / "lm", kind="lm")


def test_rerun_skips_finished_shards_and_redoes_the_rest(tokenizer, corpus, tmp_path):
    out = tmp_path / "shards"
    first = prepare_shards(corpus, tokenizer, out)
    kept, redone = (out / entry["file"] for entry in first["shards"])
    os.utime(kept, (1, 1))
    # An interrupted run: the second shard never got its entry.
    os.remove(f"{redone}.json")
    os.utime(redone, (1, 1))
    second = prepare_shards(corpus, tokenizer, out)
    assert second == first
    assert os.stat(kept).st_mtime == 1  # not rewritten
    assert os.stat(redone).st_mtime > 1  # written again


def test_another_tokenizer_is_refused_naming_the_shards(tokenizer, corpus, tmp_path):
    out = tmp_path / "shards"
    prepare_shards(corpus, tokenizer, out)
    other = SentencePieceTokenizer(
        proto=train_sentencepiece([s for pair in PAIRS for s in pair], vocab_size=50)
    )
    with pytest.raises(ValueError, match=r"shard-00000-of-00002\.tfrecord.*another"):
        make_translation_dataset(out, other, batch_size=2)
    with pytest.raises(ValueError, match="another tokenizer"):
        prepare_shards(corpus, other, out)
    with pytest.raises(ValueError, match="hold translation data"):
        make_lm_dataset(out, tokenizer, sequence_length=4, batch_size=2)


def test_truncated_shard_is_named(tokenizer, corpus, tmp_path):
    out = tmp_path / "shards"
    manifest = prepare_shards(corpus, tokenizer, out)
    shard = out / manifest["shards"][1]["file"]
    shard.write_bytes(shard.read_bytes()[:-7])
    with pytest.raises(ValueError, match=re.escape(f"Shard '{shard}' is truncated")):
        make_translation_dataset(out, tokenizer, batch_size=2)


def test_corrupt_shard_is_named_by_verify(tokenizer, corpus, tmp_path):
    out = tmp_path / "shards"
    manifest = prepare_shards(corpus, tokenizer, out)
    assert verify_shards(out)["records"] == len(PAIRS)
    shard = out / manifest["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, a CRC no longer matches
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=re.escape(f"Shard '{shard}' is corrupt")):
        verify_shards(out)


def test_bad_lines_are_an_error_or_counted_in_the_manifest(tokenizer, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"the cat\tle chat\nno tab\n\xff\tx\nopen\touvrir\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: no tab")):
        prepare_shards(path, tokenizer, tmp_path / "strict")
    manifest = prepare_shards(path, tokenizer, tmp_path / "lax", on_bad_line="skip")
    assert manifest["records"] == 2
    assert manifest["skipped"] == {
        "no tab between source and target": 1,
        "not valid UTF-8": 1,
    }


def test_cli_prepare_writes_the_manifest(tokenizer_proto, corpus, tmp_path, capsys):
    model = tmp_path / "spm.model"
    model.write_bytes(tokenizer_proto)
    out = tmp_path / "cli"
    cli.main(["prepare", "--tokenizer", str(model), "--output", str(out), corpus])
    assert f"{len(PAIRS)} records" in capsys.readouterr().out
    with open(out / "manifest.json") as f:
        assert json.load(f)["records"] == len(PAIRS)
    assert load_manifest(out)["kind"] == "translation"


def test_cli_prepare_counts_lm_documents(tokenizer_proto, tmp_path, capsys):
    model = tmp_path / "spm.model"
    model.write_bytes(tokenizer_proto)
    path = write_lines(tmp_path / "docs.txt", [f"{s} . {t}" for s, t in PAIRS])
    out = tmp_path / "lm"
    argv = ["prepare", "--kind", "lm", "--workers", "1", "--tokenizer", str(model)]
    cli.main([*argv, "--output", str(out), str(path)])
    assert f"1 records of {len(PAIRS)} documents" in capsys.readouterr().out


@pytest.mark.slow
def test_parallel_prepare_matches_one_process(tokenizer, corpus, tmp_path):
    serial = prepare_shards(corpus, tokenizer, tmp_path / "serial", num_workers=1)
    parallel = prepare_shards(corpus, tokenizer, tmp_path / "parallel", num_workers=2)
    for a, b in zip(serial["shards"], parallel["shards"]):
        assert (tmp_path / "serial" / a["file"]).read_bytes() == (
            tmp_path / "parallel" / b["file"]
        ).read_bytes()
    assert serial["tokens"] == parallel["tokens"]
