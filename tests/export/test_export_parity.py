"""Exports decode exactly like the in-process public API.

Both sides go through public functions only: `translate_ids` /
`encode_prompts` + `generate` in process, the SavedModel's signatures on the
other side; neither side's encoding is re-written here. The edge cases are
the ones where two encodings would disagree: sources longer than
`max_source_length`, negative length offsets, empty strings, and prompts
longer than the prompt window.
"""

import numpy as np
import pytest

import keras_lm
from tests.conftest import requires_tensorflow
from tests.data.corpus_helpers import make_pairs

pytestmark = [requires_tensorflow, pytest.mark.slow]

PAIRS = make_pairs(120, seed=7, max_words=10)
SIZES = dict(num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=20)


@pytest.fixture(scope="module")
def tokenizer():
    texts = [side for pair in PAIRS for side in pair]
    proto = keras_lm.tokenizers.train_sentencepiece(texts, vocab_size=50)
    return keras_lm.tokenizers.SentencePieceTokenizer(proto)


def _load(path):
    return keras_lm.export.load_exported(path)


def _until_end(row, special_ids):
    """An output row's new ids: after the start id, before EOS or padding."""
    ids = []
    for token in row[1:]:
        if token in (special_ids.eos_id, special_ids.pad_id):
            break
        ids.append(int(token))
    return ids


@pytest.mark.parametrize("num_beams", [1, 3])
def test_translator_export_matches_translate_ids(tmp_path, tokenizer, num_beams):
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=50, num_encoder_layers=1, num_decoder_layers=1, **SIZES
    )
    options = dict(
        num_beams=num_beams,
        max_source_length=6,
        source_length_ratio=1.0,
        source_length_offset=-2,
    )
    texts = [
        "",  # only EOS: a limit of ceil(1 - 2) clipped up to 1 new token
        "the cat",
        PAIRS[3][0] + " " + PAIRS[4][0],  # longer than max_source_length
        "open the folder where the password error already is",
    ]
    assert len(tokenizer.tokenize(texts[2]).numpy()) > 6
    path = str(tmp_path / "translator")
    keras_lm.export.export_translator(model, tokenizer, path, **options)
    exported = _load(path).signatures["translate_ids"](text=np.array(texts))
    exported = exported["token_ids"].numpy()
    expected = keras_lm.generation.translate_ids(model, tokenizer, texts, **options)
    assert [_until_end(row, model.special_ids) for row in exported] == expected
    assert len(expected[0]) <= 1  # the negative offset's limit is respected
    translated = _load(path).signatures["serving_default"](text=np.array(texts))
    assert [t.decode() for t in translated["translation"].numpy()] == (
        keras_lm.generation.translate_texts(model, tokenizer, texts, **options)
    )


def test_generator_export_matches_generate(tmp_path, tokenizer):
    model = keras_lm.models.TransformerLM(vocabulary_size=50, num_layers=1, **SIZES)
    prompts = ["", "the cat", PAIRS[5][1]]  # the last is longer than the window
    window, new = 4, 6
    path = str(tmp_path / "generator")
    keras_lm.export.export_generator(
        model, tokenizer, path, max_new_tokens=new, max_prompt_length=window
    )
    loaded = _load(path)

    encoded = keras_lm.generation.encode_prompts(tokenizer, prompts, window)
    assert len(tokenizer.tokenize(prompts[2]).numpy()) > window
    ids = np.full((len(prompts), window), tokenizer.pad_id, "int32")
    for row, prompt in enumerate(encoded):
        ids[row, : len(prompt)] = prompt
    greedy = model.generate(ids, max_new_tokens=new)
    np.testing.assert_array_equal(
        loaded.signatures["greedy"](prompt=np.array(prompts))["token_ids"], greedy
    )
    sampled = model.generate(
        ids, max_new_tokens=new, method="sample", top_p=0.8, seed=5
    )
    exported = loaded.signatures["sample"](
        prompt=np.array(prompts),
        temperature=np.float32(1.0),
        top_p=np.float32(0.8),
        seed=np.int64(5),
    )
    np.testing.assert_array_equal(exported["token_ids"], sampled)
    # The text output is the continuation only.
    continuation = [row[len(p) :] for row, p in zip(greedy, encoded)]
    texts = loaded.signatures["greedy"](prompt=np.array(prompts))["text"].numpy()
    for text, row in zip(texts, continuation):
        assert text.decode() == tokenizer.detokenize(row).numpy().decode()
