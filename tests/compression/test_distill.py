import pytest

import keras_lm
from tests.compression.helpers import tiny_seq2seq
from tests.conftest import requires_tensorflow

pytestmark = [requires_tensorflow, pytest.mark.slow]

SOURCES = ["open the file", "", "close the window", "save all files", "quit"]


@pytest.fixture(scope="module")
def teacher_and_tokenizer():
    proto = keras_lm.tokenizers.train_sentencepiece(
        SOURCES[:1] + SOURCES[2:] + ["ouvrir le fichier", "fermer la fenêtre"],
        vocab_size=40,
        model_type="bpe",
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    teacher = tiny_seq2seq(seed=3, vocabulary_size=tokenizer.vocabulary_size())
    return teacher, tokenizer


def test_pairs_are_the_teachers_beam_translations_in_order_whatever_the_chunks(
    teacher_and_tokenizer,
):
    teacher, tokenizer = teacher_and_tokenizer
    expected = keras_lm.generation.translate_texts(
        teacher, tokenizer, SOURCES, num_beams=2, max_source_length=12
    )
    for chunk_size in (2, 256):
        pairs = list(
            keras_lm.compression.distill_pairs(
                teacher,
                tokenizer,
                iter(SOURCES),
                num_beams=2,
                chunk_size=chunk_size,
                drop_empty=False,
                max_source_length=12,
            )
        )
        assert pairs == list(zip(SOURCES, expected))
    kept = list(
        keras_lm.compression.distill_pairs(
            teacher, tokenizer, SOURCES, num_beams=2, max_source_length=12
        )
    )
    assert kept == [(s, t) for s, t in zip(SOURCES, expected) if t]
    # The pairs feed the ordinary training pipeline.
    data = keras_lm.data.make_translation_dataset(
        list(zip(SOURCES, expected)), tokenizer, 2, max_length=12
    )
    assert next(iter(data))[0]["encoder_token_ids"].shape[0] == 2


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_beams=0), "Received: num_beams=0"),
        (dict(num_beams=2.0), "Received: num_beams=2.0"),
        (dict(chunk_size=0), "Received: chunk_size=0"),
        (dict(sources="open the file"), "not one string"),
    ],
)
def test_bad_options_are_refused_naming_the_value(
    teacher_and_tokenizer, options, message
):
    teacher, tokenizer = teacher_and_tokenizer
    options = dict(dict(sources=SOURCES), **options)
    with pytest.raises(ValueError, match=message):
        list(keras_lm.compression.distill_pairs(teacher, tokenizer, **options))


def test_a_decoder_only_teacher_is_refused(teacher_and_tokenizer):
    _, tokenizer = teacher_and_tokenizer
    lm = keras_lm.models.TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    with pytest.raises(ValueError, match="Received: TransformerLM"):
        list(keras_lm.compression.distill_pairs(lm, tokenizer, SOURCES))
