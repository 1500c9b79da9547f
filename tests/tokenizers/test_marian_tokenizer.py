"""MarianTokenizer in graph against transformers' MarianTokenizer."""

import pytest
import tensorflow as tf

from keras_lm.tokenizers.encoding import encode_sources
from keras_lm.tokenizers.marian import MarianTokenizer
from tests.convert.marian_helpers import (
    corpus_pairs,
    hf_tokenizer,
    requires_french_catalogs,
    write_tokenizer_files,
)

pytestmark = requires_french_catalogs


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    path = tmp_path_factory.mktemp("marian_tokenizer")
    write_tokenizer_files(path)
    return path


@pytest.fixture(scope="module")
def tokenizers(directory):
    return MarianTokenizer.from_directory(directory), hf_tokenizer(directory)


@pytest.fixture(scope="module")
def sentences():
    # Pairs the SentencePiece models were not trained on (those are the
    # first 3000 of another shuffle), plus edge cases of MarianTokenizer.
    pairs = corpus_pairs(500, seed=7)
    english = [p[0] for p in pairs] + [
        "café naïve Œuvre ✓",  # characters unknown to the English model
        ">>fr<< Open the file",  # a language code
        "",
        "  two  spaces ",
        "a </s> b <unk> c",  # special tokens written in the text
        "x<pad>y",
        ">>fr<< a </s>>>de<< b",
    ]
    return english, [p[1] for p in pairs]


def test_source_ids_match_transformers(tokenizers, sentences):
    ours, theirs = tokenizers
    english, _ = sentences
    ids = encode_sources(ours.tokenize(english), ours.special_ids, 10_000)
    assert ids.to_list() == theirs(english)["input_ids"]


def test_target_ids_and_text_match_transformers(tokenizers, sentences):
    ours, theirs = tokenizers
    _, french = sentences
    expected = theirs(text_target=french)["input_ids"]
    ids = ours.tokenize_target(french)
    assert [row + [ours.special_ids.eos_id] for row in ids.to_list()] == expected
    text = [t.decode("utf-8") for t in ours.detokenize(ids).numpy()]
    assert text == theirs.batch_decode(expected, skip_special_tokens=True)
    unknown = sum(ours.special_ids.unk_id in row for row in expected)
    assert unknown > 0, "no <unk> in the test sentences: the mapping is untested"


def test_detokenize_stops_at_eos_and_drops_padding(tokenizers):
    ours, theirs = tokenizers
    special = ours.special_ids
    ids = theirs(text_target=["Ouvrir le fichier"])["input_ids"][0]
    row = [special.start_id] + ids + [special.pad_id, 5, 6]
    assert ours.detokenize(tf.constant([row])).numpy()[0].decode() == theirs.decode(
        ids, skip_special_tokens=True
    )
    assert ours.detokenize(tf.constant(row)).numpy().decode() == "Ouvrir le fichier"


def test_special_ids_follow_vocab_json(tokenizers):
    ours, theirs = tokenizers
    special = ours.special_ids
    assert (special.eos_id, special.unk_id, special.pad_id) == (
        theirs.eos_token_id,
        theirs.unk_token_id,
        theirs.pad_token_id,
    )
    assert special.start_id == special.pad_id
    assert special.bos_id is None
    assert ours.vocabulary_size() == theirs.vocab_size


def test_runs_in_tf_data_and_after_reseeding(tokenizers, sentences):
    ours, _ = tokenizers
    english, _ = sentences
    eager = ours.tokenize(english[:8]).to_list()
    tf.random.set_seed(3)  # clears the SentencePiece resources of the eager cache
    dataset = tf.data.Dataset.from_tensor_slices(english[:8]).map(ours.tokenize)
    assert [list(x.numpy()) for x in dataset] == eager


def test_config_round_trip(tokenizers, sentences):
    ours, _ = tokenizers
    english, _ = sentences
    clone = MarianTokenizer.from_config(ours.get_config())
    assert (
        clone.tokenize(english[:20]).to_list() == ours.tokenize(english[:20]).to_list()
    )
    assert clone.special_ids == ours.special_ids


@pytest.mark.parametrize("missing", ["source.spm", "target.spm", "vocab.json"])
def test_missing_file_is_named(directory, tmp_path, missing):
    for name in ("source.spm", "target.spm", "vocab.json"):
        if name != missing:
            (tmp_path / name).write_bytes((directory / name).read_bytes())
    with pytest.raises(FileNotFoundError, match=rf"\['{missing}'\]"):
        MarianTokenizer.from_directory(tmp_path)


def test_vocabulary_without_special_piece_is_refused(directory):
    with pytest.raises(ValueError, match="pad_token='<pad>' is not in the vocabulary"):
        MarianTokenizer(
            directory / "source.spm",
            directory / "target.spm",
            ["</s>", "<unk>", "▁a"],
        )
