"""GPT-2 byte-level BPE in graph: the ids and text of transformers' GPT2Tokenizer."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lm.tokenizers.byte_pair import BytePairTokenizer
from tests.data.corpus_helpers import requires_french_catalogs

pytest.importorskip("tokenizers")

from tests.convert.gpt2_helpers import synthetic_texts, train_bpe  # noqa: E402

# Whitespace runs, contractions, non-breaking and other Unicode spaces,
# digits, symbols, emoji and bytes GPT-2 maps outside Latin-1.
EDGE_CASES = [
    "Hello  world",
    "a\n\nb",
    "trailing   ",
    "  leading",
    "x\t\ty",
    "don't you're we'll I'd l'homme",
    "''s x's's a  'sb",
    "prix\u00a0: 10\u202f€ !",
    "num 12345 and 3.14159",
    "emoji 😀 ok",
    "mixed \n x \n\n  y  \n",
    "line\u2028sep\u3000ideo",
    "\x1c\x1d control",
    "",
    " ",
    "\n",
]


@pytest.fixture(scope="module")
def synthetic_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bpe")
    train_bpe(directory, synthetic_texts(), vocab_size=400)
    return directory


def test_round_trip_and_special_ids(synthetic_files):
    tokenizer = BytePairTokenizer(
        synthetic_files / "vocab.json", synthetic_files / "merges.txt"
    )
    end = tokenizer.token_to_id("<|endoftext|>")
    assert end == tokenizer.vocabulary_size() - 1
    special = tokenizer.special_ids
    assert (special.pad_id, special.bos_id, special.eos_id) == (None, end, end)
    assert tokenizer.id_to_token(0) == "!"
    ids = tokenizer(["the cat", "le chat!"])
    assert ids.to_list()[1][-1] == 0
    texts = tokenizer.detokenize(ids).numpy().tolist()
    assert texts == [b"the cat", b"le chat!"]
    # A leading <|endoftext|> starts a text; the next one ends it.
    row = [end] + ids.to_list()[0] + [end] + ids.to_list()[1]
    assert tokenizer.detokenize(np.array(row)).numpy() == b"the cat"


def test_special_token_in_text_is_its_id_as_in_gpt2_tokenizer(synthetic_files):
    transformers = pytest.importorskip("transformers")
    theirs = transformers.GPT2Tokenizer(
        vocab=str(synthetic_files / "vocab.json"),
        merges=str(synthetic_files / "merges.txt"),
    )
    ours = BytePairTokenizer(
        synthetic_files / "vocab.json", synthetic_files / "merges.txt"
    )
    end = ours.token_to_id("<|endoftext|>")
    texts = [
        "the cat<|endoftext|>le chat",
        "open <|endoftext|> file ",
        "<|endoftext|>",
        "x<|endoftext|><|endoftext|>  y",
        "<|endoftext",
    ]
    ids = ours(texts).to_list()
    assert ids == [theirs(t)["input_ids"] for t in texts]
    assert ids[2] == [end] and ids[3].count(end) == 2
    assert end not in ids[4]
    assert ours.get_config()["special_tokens"] == ["<|endoftext|>"]


def test_runs_in_tf_data_and_survives_reseeding(synthetic_files):
    tokenizer = BytePairTokenizer(
        synthetic_files / "vocab.json", synthetic_files / "merges.txt"
    )
    expected = tokenizer(["the file cannot open"]).to_list()[0]
    keras.utils.set_random_seed(7)
    dataset = tf.data.Dataset.from_tensor_slices(["the file cannot open"]).map(
        tokenizer.tokenize
    )
    assert next(iter(dataset)).numpy().tolist() == expected
    assert tokenizer.tokenize("the file cannot open").numpy().tolist() == expected


def test_config_round_trip(synthetic_files):
    tokenizer = BytePairTokenizer(
        synthetic_files / "vocab.json", synthetic_files / "merges.txt"
    )
    again = BytePairTokenizer.from_config(tokenizer.get_config())
    texts = ["where is the server", "déjà  vu"]
    assert again(texts).to_list() == tokenizer(texts).to_list()
    assert again.special_ids == tokenizer.special_ids


def test_exports_in_a_saved_model(synthetic_files, tmp_path):
    tokenizer = BytePairTokenizer(
        synthetic_files / "vocab.json", synthetic_files / "merges.txt"
    )
    module = tf.Module()
    module.tokenizer = tokenizer
    module.round_trip = tf.function(
        lambda texts: module.tokenizer.detokenize(module.tokenizer.tokenize(texts)),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    texts = ["the  cat sleeps\n", "l'élève"]
    assert loaded.round_trip(tf.constant(texts)).numpy().tolist() == [
        t.encode() for t in texts
    ]


def test_missing_files_are_clear_errors(synthetic_files, tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        BytePairTokenizer(tmp_path / "vocab.json", synthetic_files / "merges.txt")
    with pytest.raises(FileNotFoundError, match="merges.txt"):
        BytePairTokenizer(synthetic_files / "vocab.json", tmp_path / "merges.txt")
    vocabulary = json.loads((synthetic_files / "vocab.json").read_text())
    with pytest.raises(ValueError, match="'zz qq'"):
        BytePairTokenizer(vocabulary, ["zz qq"])


@pytest.mark.slow
@requires_french_catalogs
def test_ids_and_text_equal_gpt2_tokenizer_on_500_real_sentences(tmp_path):
    transformers = pytest.importorskip("transformers")
    from keras_lm.data import load_gettext_pairs

    pairs = load_gettext_pairs()
    assert len(pairs) >= 3000
    train_bpe(tmp_path, [s for pair in pairs[250:3000] for s in pair], 1500)
    sentences = [s for pair in pairs[:250] for s in pair]
    assert len(sentences) == 500
    theirs = transformers.GPT2Tokenizer(
        vocab=str(tmp_path / "vocab.json"), merges=str(tmp_path / "merges.txt")
    )
    ours = BytePairTokenizer(tmp_path / "vocab.json", tmp_path / "merges.txt")
    texts = sentences + EDGE_CASES
    ids = ours(texts).to_list()
    expected = [theirs(text)["input_ids"] for text in texts]
    differ = [t for t, a, b in zip(texts, ids, expected) if a != b]
    assert not differ, f"{len(differ)} texts tokenize differently, e.g. {differ[:3]}"
    # Merges were used (not only single bytes) on most sentences.
    assert sum(len(i) < len(t.encode()) for i, t in zip(ids, sentences)) > 450
    decoded = [t.decode() for t in ours.detokenize(ours(texts)).numpy()]
    assert decoded == [theirs.decode(i) for i in expected]
    assert decoded == texts
