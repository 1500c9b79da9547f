"""keras_lm TransformerSeq2Seq -> transformers Pegasus -> keras_lm."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from keras_lm import convert, models
from keras_lm.tokenizers import SentencePieceTokenizer, train_sentencepiece
from keras_lm.tokenizers.encoding import encode_sources
from tests.convert.marian_helpers import corpus_pairs, requires_french_catalogs

pytestmark = requires_french_catalogs

SOURCES = ["Could not open the file.", "Unknown error", "Save the document as"]
SIZES = dict(
    num_encoder_layers=2,
    num_decoder_layers=2,
    num_heads=4,
    hidden_dim=32,
    intermediate_dim=64,
    max_sequence_length=64,
)
LAYOUTS = {
    # keras_lm's presets: pre-norm, relu, interleaved sinusoids, no logit bias.
    "preset": {},
    "concat": dict(
        sinusoid_layout="concat",
        activation="silu",
        logit_bias=True,
        scale_embeddings=False,
    ),
}


@pytest.fixture(scope="module")
def tokenizer_proto():
    texts = [side for pair in corpus_pairs(2000, seed=3) for side in pair]
    return train_sentencepiece(texts, vocab_size=200, character_coverage=0.995)


def _model(tokenizer, **options):
    model = models.TransformerSeq2Seq(
        vocabulary_size=tokenizer.vocabulary_size(),
        special_ids=tokenizer.special_ids,
        **SIZES,
        **options,
    )
    # Norm gains and all biases start at 1 and 0: draw them so that a
    # converter that drops or misplaces one fails.
    rng = np.random.default_rng(0)
    for variable in model.weights:
        if len(variable.shape) == 1:
            variable.assign(
                rng.normal(
                    1.0 if "gamma" in variable.path else 0.0, 0.3, variable.shape
                )
            )
    return model


def _padded_sources(tokenizer):
    rows = encode_sources(tokenizer.tokenize(SOURCES), tokenizer.special_ids, 64)
    return rows.to_tensor(default_value=tokenizer.special_ids.pad_id).numpy()


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def written(request, tokenizer_proto, tmp_path_factory):
    keras.utils.set_random_seed(0)
    tokenizer = SentencePieceTokenizer(tokenizer_proto)
    model = _model(tokenizer, **LAYOUTS[request.param])
    path = tmp_path_factory.mktemp(f"pegasus_{request.param}")
    convert.to_huggingface(model, tokenizer, str(path))
    return model, tokenizer, path, request.param


def test_transformers_gives_the_same_logits(written):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model, tokenizer, path, _ = written
    hf_model = transformers.PegasusForConditionalGeneration.from_pretrained(
        str(path)
    ).eval()
    special = tokenizer.special_ids
    encoder_ids = _padded_sources(tokenizer)
    assert (encoder_ids == special.pad_id).any(), "the sources must be padded"
    decoder_ids = np.random.default_rng(1).integers(4, 200, (3, 6)).astype("int32")
    decoder_ids[:, 0] = special.start_id
    with torch.no_grad():
        expected = hf_model(
            input_ids=torch.tensor(encoder_ids, dtype=torch.long),
            attention_mask=torch.tensor(encoder_ids != special.pad_id),
            decoder_input_ids=torch.tensor(decoder_ids, dtype=torch.long),
        ).logits.numpy()
    ours = keras.ops.convert_to_numpy(
        model({"encoder_token_ids": encoder_ids, "decoder_token_ids": decoder_ids})
    )
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    assert np.abs(expected).max() > 1.0

    with torch.no_grad():
        greedy = hf_model.generate(
            input_ids=torch.tensor(encoder_ids, dtype=torch.long),
            attention_mask=torch.tensor(encoder_ids != special.pad_id),
            do_sample=False,
            num_beams=1,
            max_new_tokens=10,
            forced_eos_token_id=None,
            bad_words_ids=[[special.pad_id]],
        ).numpy()
    mine = model.generate(encoder_ids, max_new_tokens=10)
    for row_ours, row_theirs in zip(mine, greedy):
        theirs = list(row_theirs)
        if special.eos_id in theirs:
            theirs = theirs[: theirs.index(special.eos_id) + 1]
        assert list(row_ours[: len(theirs)]) == theirs


def test_transformers_tokenizer_reads_the_same_ids(written):
    transformers = pytest.importorskip("transformers")
    _, tokenizer, path, _ = written
    theirs = transformers.AutoTokenizer.from_pretrained(str(path))
    ours = encode_sources(tokenizer.tokenize(SOURCES), tokenizer.special_ids, 64)
    assert theirs(SOURCES)["input_ids"] == ours.to_list()


def test_reading_back_gives_the_same_model(written):
    model, tokenizer, path, layout = written
    again, tokenizer_again = convert.from_huggingface(str(path))
    assert isinstance(tokenizer_again, SentencePieceTokenizer)
    assert tokenizer_again.proto == tokenizer.proto
    assert again.special_ids == model.special_ids
    inputs = {
        "encoder_token_ids": _padded_sources(tokenizer),
        "decoder_token_ids": np.full((3, 4), tokenizer.special_ids.start_id, "int32"),
    }
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again(inputs)),
        keras.ops.convert_to_numpy(model(inputs)),
        atol=1e-5,
    )
    # Interleaved models were written with their features reordered; the
    # reader puts them back: every layout comes back bit for bit.
    assert again.sinusoid_layout == model.sinusoid_layout
    assert again.get_config() == dict(model.get_config(), name=again.name)
    for ours, theirs in zip(model.weights, again.weights):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs)
        )


def test_a_pegasus_directory_without_the_layout_key_reads_as_concat(written):
    """A directory from elsewhere has no keras_lm key: transformers' own
    (concat) table applies, and the logits still match."""
    model, tokenizer, path, _ = written
    config_file = path / "config.json"
    config = json.loads(config_file.read_text())
    foreign = path.parent / (path.name + "_foreign")
    shutil.copytree(path, foreign)
    del config["keras_lm"]
    (foreign / "config.json").write_text(json.dumps(config))
    again, _ = convert.from_huggingface(str(foreign))
    assert again.sinusoid_layout == "concat" and again.logit_bias
    inputs = {
        "encoder_token_ids": _padded_sources(tokenizer),
        "decoder_token_ids": np.full((3, 4), tokenizer.special_ids.start_id, "int32"),
    }
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again(inputs)),
        keras.ops.convert_to_numpy(model(inputs)),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "option, value",
    [
        ("normalize_first", False),
        ("tie_embeddings", False),
        ("share_embeddings", False),
        ("position_encoding", "learned"),
        ("normalization", "rms_norm"),
        ("activation", "swiglu"),
        ("num_kv_heads", 2),
    ],
)
def test_models_that_do_not_fit_name_the_option(
    tokenizer_proto, tmp_path, option, value
):
    tokenizer = SentencePieceTokenizer(tokenizer_proto)
    model = models.TransformerSeq2Seq(
        vocabulary_size=tokenizer.vocabulary_size(), **SIZES, **{option: value}
    )
    with pytest.raises(ValueError, match=rf"{option}={value!r}"):
        convert.to_huggingface(model, tokenizer, str(tmp_path))


def test_a_model_without_a_writer_is_named(tokenizer_proto, tmp_path):
    tokenizer = SentencePieceTokenizer(tokenizer_proto)
    with pytest.raises(ValueError, match="received a Sequential"):
        convert.to_huggingface(keras.Sequential(), tokenizer, str(tmp_path))


@pytest.mark.slow
def test_ctranslate2_converts_the_directory_and_decodes_the_same(written, tmp_path):
    """CTranslate2's own converter accepts the written directory; with its
    decoder start set to keras_lm's start piece, its greedy output is ours."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    pytest.importorskip("torch")
    from ctranslate2.converters import TransformersConverter

    model, tokenizer, path, _ = written
    output = str(tmp_path / "ct2")
    TransformersConverter(str(path)).convert(output, force=True)
    config_file = os.path.join(output, "config.json")
    with open(config_file) as f:
        config = json.load(f)
    special = tokenizer.special_ids
    config["decoder_start_token"] = tokenizer.id_to_token(special.start_id)
    with open(config_file, "w") as f:
        json.dump(config, f)

    rows = encode_sources(tokenizer.tokenize(SOURCES), special, 64).to_list()
    translator = ctranslate2.Translator(output)
    results = translator.translate_batch(
        [[tokenizer.id_to_token(i) for i in row] for row in rows],
        beam_size=1,
        max_decoding_length=10,
    )
    ours = model.generate(_padded_sources(tokenizer), max_new_tokens=10)
    for row_ours, result in zip(ours, results):
        theirs = [tokenizer.token_to_id(piece) for piece in result.hypotheses[0]]
        assert theirs, "CTranslate2 returned an empty translation"
        assert list(row_ours[1 : 1 + len(theirs)]) == theirs
