"""Smoke tests for the keras.io recipe peer (bench.translation_peer)."""

import numpy as np
import pytest

from bench import translation_peer
from keras_lm.evaluation import score_translations
from keras_lm.tokenizers import SentencePieceTokenizer, train_sentencepiece

# keras-hub's blocks consume the padding mask; their inner sublayers then
# warn that they drop it.
pytestmark = pytest.mark.filterwarnings("ignore:.*does not support masking")

ENGLISH = (
    "the a red blue green big small old new cat dog bird horse house car "
    "garden window door table sees has eats wants opens closes"
).split()
FRENCH = (
    "le un rouge bleu vert grand petit vieux nouveau chat chien oiseau cheval "
    "maison voiture jardin fenêtre porte table voit a mange veut ouvre ferme"
).split()
SMALL = dict(hidden_dim=16, intermediate_dim=32, num_heads=2, num_layers=1)


def make_pairs(count, seed=0):
    """Word-for-word 'translations' of random 1-6 word sentences."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        words = rng.integers(0, len(ENGLISH), size=rng.integers(1, 7))
        pairs.append(
            (" ".join(ENGLISH[w] for w in words), " ".join(FRENCH[w] for w in words))
        )
    return pairs


@pytest.fixture(scope="module")
def proto():
    return train_sentencepiece(
        [text for pair in make_pairs(200) for text in pair], vocab_size=64
    )


@pytest.fixture
def tokenizer(proto):
    # Made per test: the autouse fixture's seeding drops the SentencePiece
    # resources of tokenizers created before it.
    return SentencePieceTokenizer(proto)


def test_every_batch_is_padded_to_48_and_shifted(tokenizer):
    long_pair = (" ".join(["cat"] * 80), " ".join(["chat"] * 80))
    dataset = translation_peer.make_peer_dataset(
        [long_pair] + make_pairs(7), tokenizer, batch_size=4, shuffle=False
    )
    batches = list(dataset)
    assert len(batches) == 2
    for inputs, labels in batches:
        assert inputs["encoder_inputs"].shape == (4, 48)
        assert inputs["decoder_inputs"].shape == (4, 48)
        assert labels.shape == (4, 48)
        assert labels.dtype.name == "int32"
    inputs, labels = batches[0]
    source = np.asarray(inputs["encoder_inputs"])
    decoder_input = np.asarray(inputs["decoder_inputs"])
    labels = np.asarray(labels)
    # Decoder input is [START] + label[:-1]; the source has no special ids.
    assert (decoder_input[:, 0] == tokenizer.bos_id).all()
    np.testing.assert_array_equal(decoder_input[:, 1:], labels[:, :-1])
    assert not np.isin(source, [tokenizer.bos_id, tokenizer.eos_id]).any()
    # The 80-word pair is truncated: no padding, and the label ends in [END].
    assert (source[0] != tokenizer.pad_id).all()
    assert labels[0, -1] == tokenizer.eos_id
    # A short pair: one [END] right after its tokens, then padding.
    short = labels[1]
    end = int(np.argmax(short == tokenizer.eos_id))
    assert (short[:end] > tokenizer.eos_id).all()
    assert (short[end + 1 :] == tokenizer.pad_id).all()


def test_too_few_pairs_for_one_batch_names_the_numbers(tokenizer):
    with pytest.raises(ValueError, match="received 3 pairs for batch_size=4"):
        translation_peer.make_peer_dataset(make_pairs(3), tokenizer, batch_size=4)


def test_model_outputs_probabilities_and_ignores_source_padding():
    model = translation_peer.build_peer_model(100, **SMALL)
    rng = np.random.default_rng(0)
    source = np.zeros((2, 48), "int32")
    source[:, :5] = rng.integers(4, 100, size=(2, 5))
    target = np.zeros((2, 48), "int32")
    target[:, 0] = 2
    target[:, 1:4] = rng.integers(4, 100, size=(2, 3))
    full = np.asarray(model({"encoder_inputs": source, "decoder_inputs": target}))
    assert full.shape == (2, 48, 100)
    np.testing.assert_allclose(full.sum(-1), 1.0, rtol=1e-5)
    # Padding is masked in the encoder and in cross-attention, so 43 pads
    # or 3 give the same predictions.
    short = model({"encoder_inputs": source[:, :8], "decoder_inputs": target})
    np.testing.assert_allclose(full, np.asarray(short), atol=1e-5)
    # Separate, untied embeddings for source and target.
    encoder_embedding = model.encoder.get_layer("encoder_embedding")
    decoder_embedding = model.decoder.get_layer("decoder_embedding")
    assert encoder_embedding.token_embedding is not decoder_embedding.token_embedding
    assert encoder_embedding.position_embedding.sequence_length == 48


def test_train_two_steps_then_translate_and_score(tokenizer):
    pairs = make_pairs(64, seed=2)
    model = translation_peer.build_peer_model(tokenizer.vocabulary_size(), **SMALL)
    dataset = translation_peer.make_peer_dataset(pairs, tokenizer, batch_size=8)
    result = translation_peer.train_peer(model, dataset, minutes=1, steps=2, verbose=0)
    assert result["steps"] == 2
    assert np.isfinite(result["history"]["loss"]).all()

    # Different lengths, one sentence twice: order and batching must not
    # change a sentence's translation.
    sources = ["the red cat", "the big small dog sees a house", "cat", "the red cat"]
    translations = translation_peer.greedy_translate(
        model, tokenizer, sources, batch_size=2
    )
    assert len(translations) == len(sources)
    assert all(isinstance(text, str) for text in translations)
    assert translations[0] == translations[3]
    scores = score_translations(translations, [t for _, t in make_pairs(4, seed=3)])
    assert isinstance(scores["bleu"], float) and 0.0 <= scores["bleu"] <= 100.0
    assert isinstance(scores["chrf"], float) and 0.0 <= scores["chrf"] <= 100.0


def test_translate_rejects_a_length_beyond_the_position_table(tokenizer):
    model = translation_peer.build_peer_model(tokenizer.vocabulary_size(), **SMALL)
    with pytest.raises(ValueError, match="max_length must be in \\[2, 48\\]"):
        translation_peer.greedy_translate(model, tokenizer, ["cat"], max_length=64)


def test_time_limit_stops_training_and_validation_at_the_budget(tokenizer):
    model = translation_peer.build_peer_model(tokenizer.vocabulary_size(), **SMALL)
    dataset = translation_peer.make_peer_dataset(make_pairs(64), tokenizer, 8)
    # A budget spent by the end of the first batch: one step, not an epoch.
    result = translation_peer.train_peer(
        model, dataset, minutes=1e-9, validation_data=dataset, verbose=0
    )
    assert result["steps"] == 1
    # fit validates after a stopped epoch; the callback cuts that pass short.
    limit = translation_peer.TimeLimit(minutes=1e-9)
    limit.set_model(model)
    limit.on_train_begin()
    model.stop_evaluating = False
    limit.on_test_batch_end(0)
    assert model.stop_evaluating
    with pytest.raises(ValueError, match="minutes must be positive"):
        translation_peer.TimeLimit(minutes=0)
