"""The TransformerSeq2Seq options that Marian checkpoints need."""

import keras
import numpy as np
import pytest

from keras_lm import layers, models

pytestmark = pytest.mark.multibackend

V = 40
MARIAN_LIKE = dict(
    vocabulary_size=V,
    num_encoder_layers=2,
    num_decoder_layers=2,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    max_sequence_length=12,
    activation="silu",
    normalize_first=False,
    sinusoid_layout="concat",
    share_embeddings=False,
    logit_bias=True,
    special_ids=dict(
        pad_id=V - 1, unk_id=1, bos_id=None, eos_id=0, decoder_start_id=V - 1
    ),
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _inputs():
    rng = np.random.default_rng(0)
    encoder = rng.integers(1, V - 1, size=(2, 6)).astype("int32")
    encoder[0, 4:] = V - 1
    decoder = rng.integers(1, V - 1, size=(2, 5)).astype("int32")
    decoder[:, 0] = V - 1  # Marian starts targets with the pad id
    return {"encoder_token_ids": encoder, "decoder_token_ids": decoder}


def test_concat_layout_matches_transformers_marian_table():
    torch = pytest.importorskip("torch")
    marian = pytest.importorskip("transformers.models.marian.modeling_marian")
    table = marian.MarianSinusoidalPositionalEmbedding(64, 32)
    with torch.no_grad():
        # What transformers' _init_weights writes into the table.
        table.weight.copy_(table.create_weight())
        expected = table(torch.Size([1, 64])).numpy()
    x = np.zeros((1, 64, 32), "float32")
    ours = _np(layers.PositionEncoding(layout="concat")(x))[0]
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    shifted = _np(layers.PositionEncoding(layout="concat")(x[:, :3], start_index=9))
    np.testing.assert_allclose(shifted[0], expected[9:12], atol=2e-5)


def test_concat_layout_is_the_interleaved_table_regrouped():
    x = np.zeros((1, 7, 8), "float32")
    interleaved = _np(layers.PositionEncoding()(x))[0]
    concat = _np(layers.PositionEncoding(layout="concat")(x))[0]
    np.testing.assert_allclose(concat[:, :4], interleaved[:, 0::2], atol=1e-6)
    np.testing.assert_allclose(concat[:, 4:], interleaved[:, 1::2], atol=1e-6)
    assert not np.allclose(concat, interleaved, atol=1e-2)


def test_bad_layout_is_named():
    with pytest.raises(ValueError, match="layout='halves'"):
        layers.PositionEncoding(layout="halves")
    with pytest.raises(ValueError, match="sinusoid_layout"):
        models.TransformerSeq2Seq(**dict(MARIAN_LIKE, sinusoid_layout="halves"))


def test_marian_options_round_trip(tmp_path):
    model = models.TransformerSeq2Seq(**MARIAN_LIKE)
    inputs = _inputs()
    expected = _np(model(inputs))
    clone = models.TransformerSeq2Seq.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(_np(clone(inputs)), expected, atol=1e-6)
    path = str(tmp_path / "marian.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(restored(inputs)), expected, atol=1e-6)


def test_defaults_are_unchanged():
    config = models.TransformerSeq2Seq(
        vocabulary_size=V,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
    ).get_config()
    assert config["scale_embeddings"] is True
    assert config["sinusoid_layout"] == "interleaved"
    assert config["share_embeddings"] is True
    assert config["logit_bias"] is False


def test_cached_decoding_matches_full_pass():
    model = models.TransformerSeq2Seq(**MARIAN_LIKE)
    model.logit_bias_layer.bias.assign(np.linspace(-1, 1, V).astype("float32"))
    inputs = _inputs()
    tokens = inputs["decoder_token_ids"]
    full = _np(model(inputs))
    encoder_outputs, mask = model.encode(inputs["encoder_token_ids"])
    context = (model.cross_attention_caches(encoder_outputs), mask)
    cache = model.empty_cache(2, 8)
    steps = []
    for t in range(tokens.shape[1]):
        logits, cache = model.decode_step(tokens[:, t : t + 1], cache, t, *context)
        steps.append(_np(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-4)


def test_logit_bias_is_trained_and_added():
    model = models.TransformerSeq2Seq(**MARIAN_LIKE)
    bias = model.logit_bias_layer.bias
    assert any(w is bias for w in model.trainable_weights)
    inputs = _inputs()
    before = _np(model(inputs))
    bias.assign(np.arange(V, dtype="float32"))
    shift = np.broadcast_to(np.arange(V, dtype="float32"), before.shape)
    np.testing.assert_allclose(_np(model(inputs)) - before, shift, atol=1e-4)


def test_separate_embeddings_feed_the_encoder_only():
    model = models.TransformerSeq2Seq(**MARIAN_LIKE)
    assert model.source_token_embedding is not model.token_embedding
    inputs = _inputs()
    encoder_outputs, _ = model.encode(inputs["encoder_token_ids"])
    table = model.token_embedding.embeddings
    table.assign(_np(table) * 2)
    again, _ = model.encode(inputs["encoder_token_ids"])
    np.testing.assert_allclose(_np(again), _np(encoder_outputs), atol=1e-6)
    source = model.source_token_embedding.embeddings
    source.assign(_np(source) * 2)
    changed, _ = model.encode(inputs["encoder_token_ids"])
    assert not np.allclose(_np(changed), _np(encoder_outputs), atol=1e-3)


def test_embedding_scale_can_be_turned_off():
    inputs = _inputs()
    scaled = models.TransformerSeq2Seq(**MARIAN_LIKE)
    plain = models.TransformerSeq2Seq(**dict(MARIAN_LIKE, scale_embeddings=False))
    plain.set_weights(scaled.get_weights())
    assert not np.allclose(_np(plain(inputs)), _np(scaled(inputs)), atol=1e-3)


def test_silu_feed_forward():
    block = layers.TransformerBlock(num_heads=2, intermediate_dim=16, activation="silu")
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    outputs = _np(block(x))
    relu = layers.TransformerBlock(num_heads=2, intermediate_dim=16)
    relu(x)
    relu.set_weights(block.get_weights())
    assert not np.allclose(_np(relu(x)), outputs, atol=1e-4)
    assert block.get_config()["activation"] == "silu"


def test_mixed_bfloat16_keeps_the_logit_bias_in_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = models.TransformerSeq2Seq(**MARIAN_LIKE)
    model.logit_bias_layer.bias.assign(np.full((V,), 1000.125, "float32"))
    logits = model(_inputs())
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert keras.backend.standardize_dtype(model.logit_bias_layer.bias.dtype) == (
        "float32"
    )
    # bfloat16 cannot hold 1000.125; float32 logits plus a float32 bias can.
    without = models.TransformerSeq2Seq(**dict(MARIAN_LIKE, logit_bias=False))
    without.set_weights(_without_bias(model))
    difference = _np(logits) - _np(without(_inputs()))
    np.testing.assert_allclose(difference, 1000.125, atol=1e-3)


def _without_bias(model):
    bias = model.logit_bias_layer.bias
    return [_np(w) for w in model.weights if w is not bias]
