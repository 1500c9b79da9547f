"""Marian (OPUS-MT) checkpoints: parity with transformers, and bad input."""

import json

import keras
import numpy as np
import pytest

import keras_lm
from keras_lm import convert
from keras_lm.convert.checkpoint import save_tensors
from keras_lm.generation import translate_texts
from tests.convert.marian_helpers import (
    copy_tokenizer_files,
    hf_logits,
    hf_tokenizer,
    requires_french_catalogs,
    save_tiny_marian,
    write_tokenizer_files,
)

pytestmark = requires_french_catalogs

SOURCES = [
    "Could not open the file.",
    "Save changes to the document before closing?",
    "The password is wrong",
    "Unknown error",
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("marian_tokenizer")
    write_tokenizer_files(path)
    return path


def _vocabulary_size(tokenizer_dir):
    return len(json.loads((tokenizer_dir / "vocab.json").read_text()))


LAYOUTS = {
    "shared": dict(),
    "separate": dict(share_embeddings=False),
    "untied": dict(tie=False),
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def converted(request, tokenizer_dir, tmp_path_factory):
    """(transformers model, keras_lm model, tokenizer, directory)."""
    path = tmp_path_factory.mktemp("marian")
    hf_model = save_tiny_marian(
        path, _vocabulary_size(tokenizer_dir), **LAYOUTS[request.param]
    )
    copy_tokenizer_files(tokenizer_dir, path)
    model, tokenizer = convert.from_huggingface(str(path))
    return hf_model, model, tokenizer, path


def _padded_batch(tokenizer, texts, special_ids):
    from keras_lm.tokenizers.encoding import encode_sources

    rows = encode_sources(tokenizer.tokenize(texts), special_ids, 64).to_list()
    width = max(map(len, rows))
    ids = np.full((len(rows), width), special_ids.pad_id, "int32")
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, [len(row) for row in rows]


def test_special_ids_and_options_come_from_the_config(converted):
    hf_model, model, tokenizer, path = converted
    config = json.loads((path / "config.json").read_text())
    v = config["vocab_size"]
    assert model.special_ids == tokenizer.special_ids
    assert (model.special_ids.eos_id, model.special_ids.pad_id) == (0, v - 1)
    assert model.special_ids.start_id == config["decoder_start_token_id"]
    # transformers 5 shares one table only when it also ties the output.
    tables = hf_model.model.encoder.embed_tokens, hf_model.model.decoder.embed_tokens
    assert model.share_embeddings == (
        tables[0].weight.data_ptr() == tables[1].weight.data_ptr()
    )
    assert model.tie_embeddings == config["tie_word_embeddings"]
    assert isinstance(model.logit_bias_layer, keras_lm.layers.LogitBias)
    assert (model.activation, model.normalize_first) == ("silu", False)


def test_logits_match_transformers_on_padded_batches(converted):
    hf_model, model, tokenizer, _ = converted
    special = model.special_ids
    encoder_ids, _ = _padded_batch(tokenizer, SOURCES, special)
    assert (encoder_ids == special.pad_id).any(), "the sources must be padded"
    rng = np.random.default_rng(0)
    lengths = [7, 3, 5, 1]
    decoder_ids = np.full((len(SOURCES), 7), special.pad_id, "int32")
    for i, length in enumerate(lengths):
        decoder_ids[i, 1:length] = rng.integers(0, special.pad_id, length - 1)
    decoder_ids[:, 0] = special.start_id
    expected = hf_logits(hf_model, encoder_ids, decoder_ids, special.pad_id, lengths)
    ours = keras.ops.convert_to_numpy(
        model({"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids})
    )
    # Past a row's end transformers masks the padded keys and keras_lm does
    # not (causal attention keeps them from the real positions): compare
    # the real positions.
    for i, length in enumerate(lengths):
        np.testing.assert_allclose(ours[i, :length], expected[i, :length], atol=1e-4)
    assert np.abs(expected).max() > 1.0, "logits too small to show a difference"


def test_greedy_output_matches_transformers_generate(converted):
    import torch

    hf_model, model, tokenizer, _ = converted
    special = model.special_ids
    encoder_ids, _ = _padded_batch(tokenizer, SOURCES, special)
    new_tokens = 12
    with torch.no_grad():
        expected = hf_model.generate(
            input_ids=torch.tensor(encoder_ids, dtype=torch.long),
            attention_mask=torch.tensor(encoder_ids != special.pad_id),
            do_sample=False,
            num_beams=1,
            max_new_tokens=new_tokens,
            bad_words_ids=[[special.pad_id]],  # keras_lm never generates padding
        ).numpy()
    ours = model.generate(encoder_ids, max_new_tokens=new_tokens, method="greedy")
    for row_ours, row_theirs in zip(ours, expected):
        theirs = list(row_theirs)
        if special.eos_id in theirs[1:]:
            theirs = theirs[: theirs.index(special.eos_id, 1) + 1]
        assert list(row_ours[: len(theirs)]) == theirs

    texts = translate_texts(
        model,
        tokenizer,
        SOURCES,
        num_beams=1,
        source_length_ratio=1e-9,  # every row gets exactly new_tokens
        source_length_offset=new_tokens - 0.5,
        batch_size=len(SOURCES),
    )
    reference = hf_tokenizer(converted[3]).batch_decode(
        expected, skip_special_tokens=True
    )
    assert texts == reference


def _break(path, name, value):
    from safetensors.numpy import load_file

    tensors = load_file(str(path / "model.safetensors"))
    if value is None:
        del tensors[name]
    else:
        tensors[name] = value
    save_tensors(tensors, str(path))


@pytest.fixture
def marian_dir(tokenizer_dir, tmp_path):
    save_tiny_marian(tmp_path, _vocabulary_size(tokenizer_dir))
    copy_tokenizer_files(tokenizer_dir, tmp_path)
    return tmp_path


def test_missing_tensor_is_named(marian_dir):
    name = "model.decoder.layers.1.encoder_attn.v_proj.weight"
    _break(marian_dir, name, None)
    with pytest.raises(KeyError, match=f"'{name}' is missing"):
        convert.from_huggingface(str(marian_dir))


def test_wrong_shaped_tensor_names_both_shapes(marian_dir):
    name = "model.encoder.layers.0.fc1.weight"
    _break(marian_dir, name, np.zeros((64, 31), "float32"))
    with pytest.raises(ValueError, match=rf"{name}.*\(64, 31\).*\(64, 32\)"):
        convert.from_huggingface(str(marian_dir))


@pytest.mark.parametrize("missing", ["source.spm", "target.spm", "vocab.json"])
def test_missing_tokenizer_file_is_named(marian_dir, missing):
    (marian_dir / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        convert.from_huggingface(str(marian_dir))


def test_vocabulary_size_that_does_not_match_the_weights(marian_dir):
    vocab = json.loads((marian_dir / "vocab.json").read_text())
    pieces = sorted(vocab, key=vocab.get)
    del pieces[5]  # a vocab.json one piece short of the weights' rows
    (marian_dir / "vocab.json").write_text(
        json.dumps({piece: i for i, piece in enumerate(pieces)})
    )
    message = rf"{len(pieces)} entries.*vocab_size={len(vocab)}"
    with pytest.raises(ValueError, match=message):
        convert.from_huggingface(str(marian_dir))


def test_config_vocabulary_size_that_does_not_match_the_weights(marian_dir):
    config = json.loads((marian_dir / "config.json").read_text())
    config["vocab_size"] += 1
    config["decoder_vocab_size"] = config["vocab_size"]
    (marian_dir / "config.json").write_text(json.dumps(config))
    v = config["vocab_size"]
    with pytest.raises(ValueError, match=rf"\({v - 1}, 32\).*\({v}, 32\)"):
        convert.from_huggingface(str(marian_dir))


@pytest.mark.slow
def test_converted_model_fine_tunes_and_saves(marian_dir, tmp_path):
    import keras_lm

    model, tokenizer = convert.from_huggingface(str(marian_dir))
    pairs = [
        ("Open the file", "Ouvrir le fichier"),
        ("Save the file", "Enregistrer le fichier"),
    ] * 4
    data = keras_lm.data.make_translation_dataset(
        pairs, tokenizer, batch_size=4, max_length=16, drop_remainder=True
    )
    keras_lm.training.compile_model(model, learning_rate=1e-3, jit_compile=False)
    bias = keras.ops.convert_to_numpy(model.logit_bias_layer.bias).copy()
    history = model.fit(data, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert not np.allclose(
        keras.ops.convert_to_numpy(model.logit_bias_layer.bias), bias
    )

    path = str(tmp_path / "marian.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    ids, _ = _padded_batch(tokenizer, SOURCES, model.special_ids)
    np.testing.assert_array_equal(
        restored.generate(ids, max_new_tokens=6), model.generate(ids, max_new_tokens=6)
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(activation_function="gelu"), "activation_function='gelu'"),
        (dict(decoder_attention_heads=2), "decoder_attention_heads=2"),
        (dict(decoder_vocab_size=7), "decoder_vocab_size=7"),
    ],
)
def test_configs_keras_lm_cannot_build_are_named(marian_dir, change, message):
    config = json.loads((marian_dir / "config.json").read_text())
    (marian_dir / "config.json").write_text(json.dumps(dict(config, **change)))
    with pytest.raises(ValueError, match=message):
        convert.from_huggingface(str(marian_dir))


@pytest.mark.slow
@pytest.mark.parametrize("length_penalty", [0.6, 1.0])
def test_generation_config_json_sets_transformers_defaults(
    tokenizer_dir, tmp_path, length_penalty
):
    """An OPUS-MT style generation_config.json (4 beams, padding banned,
    forced EOS, max_length) makes `generate()` with no options equal
    transformers' `generate()` with none."""
    import torch

    path = tmp_path / "marian"
    hf_model = save_tiny_marian(path, _vocabulary_size(tokenizer_dir))
    pad = hf_model.config.pad_token_id
    hf_model.generation_config.update(
        num_beams=4,
        length_penalty=length_penalty,
        bad_words_ids=[[pad]],
        forced_eos_token_id=0,
        max_length=9,
        early_stopping=False,
    )
    hf_model.save_pretrained(str(path))
    copy_tokenizer_files(tokenizer_dir, path)
    model, tokenizer = convert.from_huggingface(str(path))
    assert model.generation_config["method"] == "beam"
    assert model.generation_config["suppress_ids"] == [pad]
    reloaded = keras_lm.models.TransformerSeq2Seq.from_config(model.get_config())
    assert reloaded.generation_config == model.generation_config

    special = model.special_ids
    encoder_ids, _ = _padded_batch(tokenizer, SOURCES, special)
    # All four beams, best first, so the ranking of different hypotheses is
    # compared, not only the best one.
    with torch.no_grad():
        expected = hf_model.generate(
            input_ids=torch.tensor(encoder_ids, dtype=torch.long),
            attention_mask=torch.tensor(encoder_ids != special.pad_id),
            num_return_sequences=4,
        ).numpy()
    ours = model.generate(encoder_ids, num_return_sequences=4)
    assert ours.shape[0] == expected.shape[0] == 4 * len(SOURCES)
    assert len({tuple(row) for row in expected[:4].tolist()}) == 4
    for row_ours, row_theirs in zip(ours, expected):
        theirs = [int(i) for i in row_theirs]
        while theirs and theirs[-1] == special.pad_id and len(theirs) > 1:
            theirs.pop()  # transformers pads finished rows with the pad id
        assert [int(i) for i in row_ours[: len(theirs)]] == theirs
        assert all(int(i) == special.fill_id for i in row_ours[len(theirs) :])
