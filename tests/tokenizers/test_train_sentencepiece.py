import pathlib

import pytest
import sentencepiece as spm

from keras_lm.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, train_sentencepiece


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_special_ids_are_fixed(model_type, corpus):
    proto = train_sentencepiece(corpus, vocab_size=80, model_type=model_type)
    processor = spm.SentencePieceProcessor(model_proto=proto)
    assert processor.get_piece_size() == 80
    assert (processor.pad_id(), processor.unk_id()) == (PAD_ID, UNK_ID)
    assert (processor.bos_id(), processor.eos_id()) == (BOS_ID, EOS_ID)
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)


def test_same_seed_gives_same_model(corpus):
    first = train_sentencepiece(corpus, vocab_size=80, seed=3)
    second = train_sentencepiece(corpus, vocab_size=80, seed=3)
    assert first == second


def test_trains_from_files_and_writes_model(tmp_path, corpus):
    text_file = tmp_path / "corpus.txt"
    text_file.write_text("\n".join(corpus) + "\n\n", encoding="utf-8")
    from_strings = train_sentencepiece(corpus, vocab_size=80)
    from_file = train_sentencepiece(
        text_file, vocab_size=80, output_prefix=tmp_path / "out" / "sp"
    )
    from_list = train_sentencepiece([pathlib.Path(text_file)], vocab_size=80)
    assert from_file == from_strings == from_list
    assert (tmp_path / "out" / "sp.model").read_bytes() == from_file
    vocab_lines = (tmp_path / "out" / "sp.vocab").read_text("utf-8").splitlines()
    assert len(vocab_lines) == 80
    assert vocab_lines[0].startswith("<pad>")


@pytest.mark.parametrize("texts", [[], ["", "   ", "\n"]])
def test_empty_corpus_raises(texts):
    with pytest.raises(ValueError, match="empty corpus"):
        train_sentencepiece(texts, vocab_size=50)


def test_missing_file_raises(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        train_sentencepiece(missing, vocab_size=50)


def test_vocab_size_below_minimum_names_value(corpus):
    with pytest.raises(ValueError, match=r"vocab_size must be an integer >= 8.*=4"):
        train_sentencepiece(corpus, vocab_size=4)


def test_vocab_size_smaller_than_alphabet_names_fix(corpus):
    with pytest.raises(ValueError, match=r"vocab_size=10 is too small.*>= \d+"):
        train_sentencepiece(corpus, vocab_size=10)


def test_vocab_size_too_large_names_limit(corpus):
    with pytest.raises(ValueError, match=r"vocab_size=5000 is too large.*<= \d+"):
        train_sentencepiece(corpus, vocab_size=5000)


def test_bad_model_type_names_value(corpus):
    with pytest.raises(ValueError, match="model_type=.*word"):
        train_sentencepiece(corpus, vocab_size=50, model_type="word")


def test_non_string_items_name_type():
    with pytest.raises(TypeError, match="int"):
        train_sentencepiece(["ok", 3], vocab_size=50)


def test_missing_second_file_raises_file_not_found(tmp_path, corpus):
    text_file = tmp_path / "corpus.txt"
    text_file.write_text("\n".join(corpus), encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="second.txt"):
        train_sentencepiece([text_file, tmp_path / "second.txt"], vocab_size=50)
