import keras
import numpy as np
import pytest

from keras_lm import models
from keras_lm.models import common
from tests.conftest import requires_tensorflow

pytestmark = pytest.mark.multibackend

V = 40
SEQ2SEQ = dict(
    vocabulary_size=V,
    num_encoder_layers=2,
    num_decoder_layers=2,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    max_sequence_length=12,
)
LM = dict(
    vocabulary_size=V,
    num_layers=2,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    max_sequence_length=12,
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _ids(batch, length, seed):
    return (
        np.random.default_rng(seed).integers(4, V, size=(batch, length)).astype("int32")
    )


def _seq2seq_inputs():
    encoder = _ids(2, 6, 0)
    encoder[0, 4:] = 0
    decoder = _ids(2, 5, 1)
    return {"encoder_token_ids": encoder, "decoder_token_ids": decoder}


def _lm_inputs():
    return {"token_ids": _ids(2, 5, 2)}


CASES = [
    (models.TransformerSeq2Seq, SEQ2SEQ, _seq2seq_inputs, "decoder_token_ids"),
    (
        models.TransformerSeq2Seq,
        dict(
            SEQ2SEQ,
            position_encoding="learned",
            tie_embeddings=False,
            normalize_first=False,
            activation="swiglu",
            num_kv_heads=1,
        ),
        _seq2seq_inputs,
        "decoder_token_ids",
    ),
    (models.TransformerLM, LM, _lm_inputs, "token_ids"),
    (
        models.TransformerLM,
        dict(
            LM, position_encoding="sinusoidal", normalization="rms_norm", num_kv_heads=1
        ),
        _lm_inputs,
        "token_ids",
    ),
]
IDS = ["seq2seq", "seq2seq-variant", "lm", "lm-variant"]


@pytest.mark.parametrize("cls, kwargs, make_inputs, target_key", CASES, ids=IDS)
def test_config_and_keras_round_trip(cls, kwargs, make_inputs, target_key, tmp_path):
    model = cls(**kwargs)
    inputs = make_inputs()
    expected = _np(model(inputs))
    assert expected.shape == (2, inputs[target_key].shape[1], V)
    assert expected.dtype == np.float32

    clone = cls.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(_np(clone(inputs)), expected, atol=1e-6)

    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is cls
    np.testing.assert_allclose(_np(restored(inputs)), expected, atol=1e-6)


def _same_dropout_masks(model):
    """A function that rewinds every dropout seed of `model` to now, so the
    next training call draws the masks the previous one drew."""
    seeds = [v for v in model.variables if "seed_generator" in v.path]
    assert seeds or not model.dropout, "no dropout seeds found"
    states = [_np(v) for v in seeds]

    def rewind():
        for variable, state in zip(seeds, states):
            variable.assign(state)

    return rewind


@pytest.mark.parametrize("cls, kwargs, make_inputs, target_key", CASES, ids=IDS)
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_causality(cls, kwargs, make_inputs, target_key, dropout):
    model = cls(**dict(kwargs, dropout=dropout))
    inputs = make_inputs()
    changed = dict(inputs)
    changed[target_key] = inputs[target_key].copy()
    changed[target_key][:, 3:] = (changed[target_key][:, 3:] + 7) % (V - 4) + 4
    # Training mode with the same dropout masks on both calls: attention with
    # dropout takes its own path, which must be causal too (keras#23038).
    rewind = _same_dropout_masks(model)
    before = _np(model(inputs, training=True))
    rewind()
    after = _np(model(changed, training=True))
    np.testing.assert_allclose(before[:, :3], after[:, :3], atol=1e-5)
    assert not np.allclose(before[:, 3:], after[:, 3:], atol=1e-4)


@pytest.mark.parametrize("cls, kwargs, make_inputs, target_key", CASES, ids=IDS)
def test_appending_padding_keeps_real_positions(cls, kwargs, make_inputs, target_key):
    model = cls(**kwargs)
    inputs = make_inputs()
    padded = {k: np.pad(v, ((0, 0), (0, 3))) for k, v in inputs.items()}
    length = inputs[target_key].shape[1]
    np.testing.assert_allclose(
        _np(model(padded))[:, :length], _np(model(inputs)), atol=1e-5
    )


def test_padded_encoder_positions_do_not_reach_the_decoder():
    model = models.TransformerSeq2Seq(**SEQ2SEQ)
    inputs = _seq2seq_inputs()  # row 0 has padding from position 4
    changed = {k: v.copy() for k, v in inputs.items()}
    # Garbage where the first row's encoder mask says "padding" would change
    # the result only if cross-attention looked at padded positions. Write it
    # through the embedding: replace pad ids with real ids but keep the mask by
    # comparing against a model call on the un-padded prefix instead.
    prefix = {
        "encoder_token_ids": inputs["encoder_token_ids"][:1, :4],
        "decoder_token_ids": inputs["decoder_token_ids"][:1],
    }
    np.testing.assert_allclose(_np(model(inputs))[:1], _np(model(prefix)), atol=1e-5)
    changed["encoder_token_ids"][0, 4:] = 5
    assert not np.allclose(_np(model(changed))[:1], _np(model(prefix)), atol=1e-4)


@pytest.mark.parametrize("cls, kwargs, make_inputs, target_key", CASES, ids=IDS)
def test_cached_decoding_matches_full_pass(cls, kwargs, make_inputs, target_key):
    model = cls(**kwargs)
    inputs = make_inputs()
    tokens = inputs[target_key]
    full = _np(model(inputs))
    length = tokens.shape[1]
    cache = model.empty_cache(2, length + 3)
    context = ()
    if cls is models.TransformerSeq2Seq:
        encoder_outputs, encoder_mask = model.encode(inputs["encoder_token_ids"])
        context = (model.cross_attention_caches(encoder_outputs), encoder_mask)
    logits, cache = model.decode_step(tokens[:, :2], cache, 0, *context)
    steps = [_np(logits)]
    for t in range(2, length):
        logits, cache = model.decode_step(tokens[:, t : t + 1], cache, t, *context)
        steps.append(_np(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-4)


@pytest.mark.parametrize(
    "cls, kwargs, make_inputs, target_key", CASES[::2], ids=IDS[::2]
)
def test_mixed_bfloat16_keeps_float32_variables(cls, kwargs, make_inputs, target_key):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = cls(**kwargs)
    logits = model(make_inputs())
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(_np(logits)))
    assert {keras.backend.standardize_dtype(w.dtype) for w in model.weights} == {
        "float32"
    }
    blocks = model.blocks if cls is models.TransformerLM else model.decoder_blocks
    assert blocks[0].compute_dtype == "bfloat16"


@pytest.mark.parametrize("cls, kwargs, make_inputs, target_key", CASES, ids=IDS)
def test_mixed_bfloat16_logits_are_a_float32_projection(
    cls, kwargs, make_inputs, target_key
):
    # Rounding the table or the logits to bfloat16 (8 bits of mantissa)
    # would shift logits by up to 2**-8 of their size.
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = cls(**kwargs)
    inputs = make_inputs()
    seq2seq = cls is models.TransformerSeq2Seq
    if kwargs.get("normalize_first", True):
        last = "decoder_norm" if seq2seq else "final_norm"
    else:
        last = (model.decoder_blocks if seq2seq else model.blocks)[-1].name
    hidden = keras.Model(model.inputs, model.get_layer(last).output)(inputs)
    assert keras.backend.standardize_dtype(hidden.dtype) == "bfloat16"
    embedding = model.token_embedding
    table = embedding.embeddings if embedding.tie_weights else None
    kernel = _np(table).T if table is not None else _np(embedding.reverse_embeddings)
    expected = _np(keras.ops.cast(hidden, "float32")) @ kernel.astype("float32")
    np.testing.assert_allclose(_np(model(inputs)), expected, rtol=1e-5, atol=1e-6)
    # Cached decoding projects outside the model's call, where Keras used to
    # read the table in bfloat16.
    alone = common.to_logits(embedding, hidden)
    np.testing.assert_allclose(_np(alone), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "cls, kwargs, make_inputs, target_key", CASES[::2], ids=IDS[::2]
)
def test_int8_quantization_stays_close(cls, kwargs, make_inputs, target_key):
    wide = dict(kwargs, hidden_dim=32, intermediate_dim=64)
    model = cls(**wide)
    inputs = make_inputs()
    reference = _np(model(inputs))
    model.quantize("int8")
    assert model.token_embedding.quantization_mode == "int8"
    int8_weights = [w for w in model.weights if "int8" in str(w.dtype)]
    assert len(int8_weights) >= 5, "quantize('int8') left too few int8 weights"
    quantized = _np(model(inputs))
    relative = np.abs(quantized - reference).max() / np.abs(reference).max()
    assert relative < 0.05
    agreement = (quantized.argmax(-1) == reference.argmax(-1)).mean()
    assert agreement > 0.9


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_dim=10, num_heads=4), "hidden_dim=10, num_heads=4"),
        (dict(vocabulary_size=0), "vocabulary_size=0"),
        (dict(num_layers=-1), "num_layers=-1"),
        (dict(intermediate_dim=0), "intermediate_dim=0"),
        (dict(dropout=1.0), "dropout=1.0"),
        (dict(position_encoding="alibi"), "position_encoding"),
        (dict(num_heads=4, num_kv_heads=3), "num_kv_heads=3"),
    ],
)
def test_bad_constructor_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        models.TransformerLM(**dict(LM, **overrides))


def test_seq2seq_bad_layer_count():
    with pytest.raises(ValueError, match="num_decoder_layers=0"):
        models.TransformerSeq2Seq(**dict(SEQ2SEQ, num_decoder_layers=0))


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"token_ids": np.ones((2, 5), "float32")}, "integer token ids"),
        ({"token_ids": np.ones((5,), "int32")}, r"\[batch, length\]"),
        ({"token_ids": np.ones((1, 13), "int32")}, "max_sequence_length=12"),
        ({"tokens": np.ones((1, 3), "int32")}, "Missing inputs"),
        (np.ones((1, 3), "int32"), "Expected a dict"),
    ],
)
def test_bad_inputs_are_refused(inputs, message):
    model = models.TransformerLM(**LM)
    with pytest.raises(ValueError, match=message):
        model(inputs)


def test_presets_build():
    config = models.get_preset("tiny")
    model = models.TransformerSeq2Seq(vocabulary_size=V, **config)
    assert model.hidden_dim == config["hidden_dim"]
    assert models.get_preset("transformer_base")["hidden_dim"] == 512
    assert models.get_preset("transformer_big")["num_heads"] == 16
    with pytest.raises(ValueError, match="Unknown seq2seq preset 'huge'"):
        models.get_preset("huge")


@requires_tensorflow
@pytest.mark.parametrize("cls, kwargs, make_inputs, target_key", CASES, ids=IDS)
def test_traces_with_unknown_batch_and_lengths(cls, kwargs, make_inputs, target_key):
    # Bucketed datasets reach fit as [None, None] ids; every static dimension
    # below that must survive or be read at run time.
    import tensorflow as tf

    model = cls(**kwargs)
    inputs = make_inputs()
    spec = {k: tf.TensorSpec([None, None], tf.int32) for k in inputs}
    traced = tf.function(lambda x: model(x, training=True), input_signature=[spec])
    assert traced(inputs).shape == (2, inputs[target_key].shape[1], V)


@requires_tensorflow
def test_float_ids_are_refused_in_a_graph_too():
    # Only Keras' spec pass under a multi-replica strategy may send float ids
    # (tests/training/test_distributed_training.py); a traced call may not.
    import tensorflow as tf

    model = models.TransformerLM(**LM)
    traced = tf.function(lambda x: model(x))
    with pytest.raises(ValueError, match="integer token ids"):
        traced({"token_ids": tf.ones((2, 5), tf.float32)})


@pytest.mark.parametrize(
    "cls, kwargs, make_inputs, target_key", CASES[::2], ids=IDS[::2]
)
@pytest.mark.parametrize("bad_id", [V, -1])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_ids_outside_the_vocabulary_are_refused(
    cls, kwargs, make_inputs, target_key, bad_id, as_tensor
):
    # XLA (and GPU gathers) clamp an out-of-range id to a real row silently.
    model = cls(**kwargs)
    for key in make_inputs():
        inputs = make_inputs()
        inputs[key][1, 2] = bad_id
        if as_tensor:
            inputs = {k: keras.ops.convert_to_tensor(v) for k, v in inputs.items()}
        message = rf"{key} holds id {bad_id}, .*vocabulary of size {V}"
        with pytest.raises(ValueError, match=message):
            model(inputs)


@requires_tensorflow
@pytest.mark.parametrize(
    "cls, kwargs, make_inputs, target_key", CASES[::2], ids=IDS[::2]
)
@pytest.mark.parametrize("bad_id", [V, -1])
def test_ids_outside_the_vocabulary_fail_a_traced_call(
    cls, kwargs, make_inputs, target_key, bad_id
):
    import tensorflow as tf

    model = cls(**kwargs)
    inputs = make_inputs()
    spec = {k: tf.TensorSpec([None, None], tf.int32) for k in inputs}
    traced = tf.function(lambda x: model(x), input_signature=[spec])
    assert traced(inputs).shape[-1] == V
    inputs[target_key][0, 1] = bad_id
    expected = "max id" if bad_id == V else "min id"
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=rf"\[0, {V}\)[\s\S]*{expected}"
    ) as raised:
        traced(inputs)
    assert str(bad_id) in str(raised.value)
