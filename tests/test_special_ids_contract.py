"""One contract for special ids, from tokenizer to export.

The same corpus is tokenized twice: with keras_lm's default ids (pad 0, unk 1,
bos 2, eos 3) and with Marian-like ones (eos 0, pad = the last id, bos = the
one before it). The two vocabularies hold the same pieces, so one is a
permutation of the other. A model whose embedding rows are permuted the same
way computes the same function; so training, greedy, beam and sampled
decoding, export and reload under the non-default ids must give exactly the
permuted results of the default ones. A code path that assumed a literal id
(padding 0, BOS 2, EOS 3) would break the equality.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lm
from tests.conftest import requires_tensorflow
from tests.data.corpus_helpers import make_pairs
from tests.training.training_helpers import PARITY_COMPILE

pytestmark = [requires_tensorflow, pytest.mark.slow]

VOCAB = 60
PAIRS = make_pairs(240, seed=5, max_words=8)
SEQ2SEQ = dict(
    vocabulary_size=VOCAB,
    num_encoder_layers=1,
    num_decoder_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=24,
    dropout=0.0,
)
LM = dict(
    vocabulary_size=VOCAB,
    num_layers=1,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=24,
    dropout=0.0,
)
MARIAN_LIKE = keras_lm.SpecialIds(
    pad_id=VOCAB - 1, unk_id=1, bos_id=VOCAB - 2, eos_id=0
)


@pytest.fixture(scope="module")
def tokenizers():
    texts = [side for pair in PAIRS for side in pair]
    train = keras_lm.tokenizers.train_sentencepiece
    default = keras_lm.tokenizers.SentencePieceTokenizer(train(texts, VOCAB))
    other = keras_lm.tokenizers.SentencePieceTokenizer(
        train(texts, VOCAB, special_ids=MARIAN_LIKE)
    )
    assert other.special_ids == MARIAN_LIKE
    pieces = [default.id_to_token(i) for i in range(VOCAB)]
    perm = np.array([other.token_to_id(piece) for piece in pieces])  # default->other
    assert sorted(perm.tolist()) == list(range(VOCAB))
    # Same pieces, same segmentation: only the ids differ.
    sample = [PAIRS[0][0], PAIRS[1][1], ""]
    for a, b in zip(
        default.tokenize(sample).to_list(), other.tokenize(sample).to_list()
    ):
        assert perm[a].tolist() == b
    return default, other, perm


def _permuted_copy(model, special_ids, perm):
    """The same network for the permuted vocabulary: embedding row i -> perm[i]."""
    config = model.get_config()
    config["special_ids"] = special_ids.get_config()
    copy = type(model).from_config(config)
    weights = []
    for variable, value in zip(model.weights, model.get_weights()):
        if "token_embedding" in variable.path:
            permuted = np.empty_like(value)
            permuted[perm] = value
            value = permuted
        weights.append(value)
    copy.set_weights(weights)
    return copy


def _fit(model, data, steps=30):
    keras_lm.training.compile_model(model, label_smoothing=0.1, **PARITY_COMPILE)
    history = model.fit(data, steps_per_epoch=1, epochs=steps, verbose=0)
    return np.array(history.history["loss"])


def _translation_data(tokenizer):
    return keras_lm.data.make_translation_dataset(
        PAIRS, tokenizer, batch_size=8, max_length=12, shuffle=False
    ).repeat()


@pytest.fixture(scope="module")
def seq2seq_pair(tokenizers):
    default, other, perm = tokenizers
    keras.utils.set_random_seed(3)
    model = keras_lm.models.TransformerSeq2Seq(**SEQ2SEQ)
    twin = _permuted_copy(model, other.special_ids, perm)
    losses = _fit(model, _translation_data(default))
    twin_losses = _fit(twin, _translation_data(other))
    return model, twin, losses, twin_losses


def test_pipelines_pad_with_the_pad_id_and_weight_real_labels(tokenizers):
    _, other, _ = tokenizers
    inputs, labels, weights = next(iter(_translation_data(other)))
    labels, weights = labels.numpy(), weights.numpy()
    is_pad = labels == other.pad_id
    assert is_pad.any() and (weights == ~is_pad).all()
    # A target that fits ends with EOS, which is id 0 here: a real label.
    assert ((labels == 0) & (weights == 1)).any()
    encoder = inputs["encoder_token_ids"].numpy()
    assert (encoder[:, 0] != other.pad_id).all() and (encoder == other.pad_id).any()
    assert (inputs["decoder_token_ids"].numpy()[:, 0] == other.bos_id).all()


def test_training_under_other_ids_equals_permuted_default(tokenizers, seq2seq_pair):
    _, _, perm = tokenizers
    model, twin, losses, twin_losses = seq2seq_pair
    np.testing.assert_allclose(twin_losses, losses, rtol=1e-5)
    assert losses[-1] < losses[0]
    for ours, theirs in zip(model.weights, twin.weights):
        expected = ours.numpy()
        if "token_embedding" in ours.path:
            expected = np.empty_like(expected)
            expected[perm] = ours.numpy()
        np.testing.assert_allclose(theirs.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        dict(method="greedy"),
        dict(method="beam", num_beams=3),
        dict(method="sample", top_p=0.95, seed=4),
    ],
    ids=["greedy", "beam", "sample"],
)
def test_decoding_under_other_ids_equals_permuted_default(
    tokenizers, seq2seq_pair, options
):
    default, other, perm = tokenizers
    model, twin, _, _ = seq2seq_pair
    texts = [source for source, _ in PAIRS[:6]]
    ids = keras_lm.generation.translate_ids(model, default, texts, num_beams=1)
    twin_ids = keras_lm.generation.translate_ids(twin, other, texts, num_beams=1)
    assert [perm[row].tolist() for row in ids] == twin_ids
    sources = np.full((6, 12), default.pad_id, "int32")
    for row, source in enumerate(
        keras_lm.generation.encode_sources(default, texts, 12)
    ):
        sources[row, : len(source)] = source
    out = model.generate(sources, max_new_tokens=10, **options)
    twin_out = twin.generate(perm[sources], max_new_tokens=10, **options)
    np.testing.assert_array_equal(twin_out, perm[out])
    # EOS (id 0 here) ends rows, and what follows is the pad id.
    ended = (twin_out == 0).any(axis=1)
    assert ended.any()
    for row in twin_out[ended]:
        after = row[np.flatnonzero(row == 0)[0] + 1 :]
        assert (after == other.pad_id).all()


def test_export_and_reload_under_other_ids(tmp_path, tokenizers, seq2seq_pair):
    default, other, perm = tokenizers
    model, twin, _, _ = seq2seq_pair
    texts = [source for source, _ in PAIRS[6:12]]
    expected = keras_lm.generation.translate_texts(model, default, texts)
    assert keras_lm.generation.translate_texts(twin, other, texts) == expected

    path = str(tmp_path / "model.keras")
    twin.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.special_ids == MARIAN_LIKE
    assert keras_lm.generation.translate_texts(reloaded, other, texts) == expected

    export = str(tmp_path / "export")
    keras_lm.export.export_translator(twin, other, export)
    script = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "t = m.signatures['serving_default'](text=tf.constant(json.loads(sys.argv[2])))"
        "\nprint(json.dumps([s.decode() for s in t['translation'].numpy()]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, export, json.dumps(texts)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected


def test_tokenizer_and_model_must_agree(tokenizers, seq2seq_pair):
    default, _, _ = tokenizers
    _, twin, _, _ = seq2seq_pair
    with pytest.raises(ValueError, match="disagree on"):
        keras_lm.generation.translate_texts(twin, default, ["the cat"])


def test_decoder_only_under_other_ids_equals_permuted_default(tokenizers):
    default, other, perm = tokenizers
    documents = [target for _, target in PAIRS]
    keras.utils.set_random_seed(4)
    model = keras_lm.models.TransformerLM(**LM)
    twin = _permuted_copy(model, other.special_ids, perm)

    def data(tokenizer):
        return keras_lm.data.make_lm_dataset(
            documents, tokenizer, sequence_length=12, batch_size=8, shuffle=False
        ).repeat()

    losses = _fit(model, data(default))
    np.testing.assert_allclose(_fit(twin, data(other)), losses, rtol=1e-5)

    prompts = ["le chat", "ouvrir le fichier"]
    encoded = keras_lm.generation.encode_prompts(default, prompts)
    assert all(row[0] == default.bos_id for row in encoded)
    ids = np.full((2, max(map(len, encoded))), default.pad_id, "int32")
    for row, prompt in enumerate(encoded):
        ids[row, : len(prompt)] = prompt
    for options in (
        dict(method="greedy"),
        dict(method="beam", num_beams=2),
        dict(method="sample", top_k=5, seed=1),
    ):
        out = model.generate(ids, max_new_tokens=8, **options)
        np.testing.assert_array_equal(
            twin.generate(perm[ids], max_new_tokens=8, **options), perm[out]
        )


def _lm_preferring_id_zero(special_ids):
    """A TransformerLM whose every next-token argmax is id 0."""
    model = keras_lm.models.TransformerLM(
        **{**LM, "vocabulary_size": 10}, special_ids=special_ids
    )
    direction = np.random.default_rng(0).normal(size=16).astype("float32")
    model.final_norm.gamma.assign(np.zeros(16, "float32"))
    model.final_norm.beta.assign(direction)  # every hidden state is `direction`
    table = model.token_embedding.embeddings.numpy()
    table[0] = 3.0 * direction
    model.token_embedding.embeddings.assign(table)
    return model


def test_a_real_token_with_id_zero_is_generated_when_it_is_the_argmax():
    gpt2_like = keras_lm.SpecialIds(pad_id=None, unk_id=None, bos_id=9, eos_id=9)
    model = _lm_preferring_id_zero(gpt2_like)
    for options in (dict(method="greedy"), dict(method="sample", top_k=3, seed=0)):
        out = model.generate([[9, 4]], max_new_tokens=3, **options)
        np.testing.assert_array_equal(out, [[9, 4, 0, 0, 0]])
    out, _ = model.generate(
        [[9, 4]], max_new_tokens=3, method="beam", eos_id=None, return_all_beams=True
    )
    np.testing.assert_array_equal(out[0, 0], [9, 4, 0, 0, 0])
    # Where id 0 is padding it is never generated, argmax or not.
    padded = _lm_preferring_id_zero(keras_lm.SpecialIds())
    out = padded.generate([[2, 4]], max_new_tokens=3, eos_id=None)
    assert (out[0, 2:] != 0).all()


def test_prompts_without_a_pad_id_take_an_explicit_padding_mask():
    gpt2_like = keras_lm.SpecialIds(pad_id=None, unk_id=None, bos_id=9, eos_id=9)
    keras.utils.set_random_seed(2)
    model = keras_lm.models.TransformerLM(
        **{**LM, "vocabulary_size": 10}, special_ids=gpt2_like
    )
    together = model.generate(
        [[9, 4, 5], [9, 6, 0]],
        padding_mask=[[True, True, True], [True, True, False]],
        max_new_tokens=4,
        eos_id=None,
    )
    alone = model.generate([[9, 6]], max_new_tokens=4, eos_id=None)
    np.testing.assert_array_equal(together[1, :6], alone[0])


def test_translate_ids_refuses_ids_outside_the_model_vocabulary(tokenizers):
    default, _, _ = tokenizers
    small = keras_lm.models.TransformerSeq2Seq(**{**SEQ2SEQ, "vocabulary_size": 10})
    text = PAIRS[0][0]
    assert max(default.tokenize(text).numpy()) >= 10
    with pytest.raises(ValueError, match="outside the model's vocabulary of size 10"):
        keras_lm.generation.translate_ids(small, default, [text])
