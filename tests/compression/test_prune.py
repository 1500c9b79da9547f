import keras
import numpy as np
import pytest

import keras_lm
from tests.compression.helpers import batch, logits, tiny_seq2seq
from tests.conftest import requires_tensorflow

pytestmark = [requires_tensorflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_and_importance():
    model = tiny_seq2seq()
    importance = keras_lm.compression.measure_importance(
        model, [batch(0), batch(1)], num_batches=2
    )
    return model, importance


def test_removing_nothing_is_the_identity(model_and_importance):
    model, importance = model_and_importance
    inputs, _, _ = batch(3)
    for same in (
        keras_lm.compression.prune(model),
        keras_lm.compression.prune(model, importance, ffn_sparsity=0.0),
    ):
        assert same is not model
        assert same.get_config() == model.get_config()
        np.testing.assert_array_equal(logits(same, inputs), logits(model, inputs))


def test_pruned_model_is_smaller_dense_and_round_trips_through_keras(
    model_and_importance, tmp_path
):
    model, importance = model_and_importance
    smaller = keras_lm.compression.prune(
        model,
        importance,
        ffn_sparsity=0.5,
        drop_encoder_layers=1,
        drop_decoder_layers=1,
    )
    assert type(smaller) is type(model)
    assert smaller.intermediate_dim == 12
    assert (smaller.num_encoder_layers, smaller.num_decoder_layers) == (1, 1)
    assert smaller.count_params() < model.count_params()
    assert model.intermediate_dim == 24  # the original is untouched
    inputs, _, _ = batch(3)
    expected = logits(smaller, inputs)
    path = str(tmp_path / "pruned.keras")
    smaller.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == smaller.get_config()
    np.testing.assert_array_equal(logits(loaded, inputs), expected)


def test_kept_units_are_the_most_important_and_their_weights_are_copied(
    model_and_importance,
):
    model, importance = model_and_importance
    smaller = keras_lm.compression.prune(model, importance, ffn_sparsity=0.25)
    for old, new in zip(
        model.encoder_blocks + model.decoder_blocks,
        smaller.encoder_blocks + smaller.decoder_blocks,
    ):
        keep = np.sort(np.argsort(-importance["ffn"][old.name])[:18])
        np.testing.assert_array_equal(
            np.asarray(new.ffn_intermediate.kernel),
            np.asarray(old.ffn_intermediate.kernel)[:, keep],
        )
        np.testing.assert_array_equal(
            np.asarray(new.ffn_intermediate.bias),
            np.asarray(old.ffn_intermediate.bias)[keep],
        )
        np.testing.assert_array_equal(
            np.asarray(new.ffn_output.kernel), np.asarray(old.ffn_output.kernel)[keep]
        )
        np.testing.assert_array_equal(
            np.asarray(new.self_attention.query_dense.kernel),
            np.asarray(old.self_attention.query_dense.kernel),
        )


def test_dead_units_score_zero_and_are_removed_first_without_changing_outputs():
    # gelu: no live unit is exactly inactive on a batch, as relu ones can be.
    model = tiny_seq2seq(seed=1, activation="gelu")
    dead = [0, 5, 11, 17, 20, 23]
    for block in model.encoder_blocks + model.decoder_blocks:
        kernel = np.asarray(block.ffn_output.kernel).copy()
        kernel[dead] = 0.0  # these units no longer reach the output
        block.ffn_output.kernel.assign(kernel)
    importance = keras_lm.compression.measure_importance(
        model, [batch(0)], num_batches=1, layers=False
    )
    for score in importance["ffn"].values():
        assert np.all(score[dead] == 0.0)
        assert np.all(np.delete(score, dead) > 0.0)
    smaller = keras_lm.compression.prune(model, importance, ffn_sparsity=0.25)
    assert smaller.intermediate_dim == 18
    inputs, _, _ = batch(3)
    np.testing.assert_allclose(
        logits(smaller, inputs), logits(model, inputs), rtol=1e-5, atol=1e-5
    )


def test_a_block_that_does_nothing_is_the_block_dropped():
    model = tiny_seq2seq(seed=2, layers=3)
    idle = model.decoder_blocks[1]
    # Pre-norm: zero output projections make the block the identity.
    for dense in (
        idle.self_attention.output_dense,
        idle.cross_attention.output_dense,
        idle.ffn_output,
    ):
        for variable in dense.weights:
            variable.assign(np.zeros(variable.shape, "float32"))
    importance = keras_lm.compression.measure_importance(model, [batch(0)])
    assert importance["layers"][idle.name] == pytest.approx(0.0, abs=1e-5)
    others = [v for k, v in importance["layers"].items() if k != idle.name]
    assert all(abs(v) > 1e-4 for v in others)
    # On random data removing a block can also lower the loss; rank the idle
    # block last to check that the least important block is the one removed
    # and the later blocks move up with their weights.
    importance["layers"][idle.name] = min(others) - 1.0
    smaller = keras_lm.compression.prune(model, importance, drop_decoder_layers=1)
    assert smaller.num_decoder_layers == 2
    inputs, _, _ = batch(3)
    np.testing.assert_allclose(
        logits(smaller, inputs), logits(model, inputs), rtol=1e-5, atol=1e-5
    )


def test_swiglu_gate_is_pruned_with_its_units():
    model = tiny_seq2seq(activation="swiglu", layers=1)
    importance = keras_lm.compression.measure_importance(
        model, [batch(0)], layers=False
    )
    smaller = keras_lm.compression.prune(model, importance, ffn_sparsity=0.5)
    assert tuple(smaller.encoder_blocks[0].ffn_gate.kernel.shape) == (16, 12)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(ffn_sparsity=1.0), r"ffn_sparsity must be in \[0, 1\). Received: "),
        (dict(ffn_sparsity=-0.5), "Received: ffn_sparsity=-0.5"),
        (dict(ffn_sparsity="half"), "Received: 'half'"),
        (dict(ffn_sparsity=0.99), "would leave no feed-forward unit"),
        (dict(drop_encoder_layers=2), "drop_encoder_layers=2 would leave no block"),
        (dict(drop_decoder_layers=-1), "Received: drop_decoder_layers=-1"),
        (dict(drop_decoder_layers=1.0), "Received: drop_decoder_layers=1.0"),
        (dict(drop_layers=1), "drop_layers does not apply to a TransformerSeq2Seq"),
    ],
)
def test_bad_pruning_options_are_refused_naming_the_value(
    model_and_importance, options, message
):
    model, importance = model_and_importance
    with pytest.raises(ValueError, match=message):
        keras_lm.compression.prune(model, importance, **options)


def test_missing_or_foreign_importance_and_quantized_models_are_refused(
    model_and_importance,
):
    model, importance = model_and_importance
    with pytest.raises(ValueError, match="Pass importance="):
        keras_lm.compression.prune(model, None, ffn_sparsity=0.5)
    other = tiny_seq2seq(layers=1)
    with pytest.raises(ValueError, match="no score for blocks"):
        keras_lm.compression.prune(other, {"ffn": {}}, ffn_sparsity=0.5)
    ffn_only = {"ffn": importance["ffn"], "layers": {}}
    with pytest.raises(ValueError, match="no score for blocks"):
        keras_lm.compression.prune(model, ffn_only, drop_decoder_layers=1)
    with pytest.raises(ValueError, match="num_batches must be a positive integer"):
        keras_lm.compression.measure_importance(model, [batch(0)], num_batches=0)
    with pytest.raises(ValueError, match="at least one batch"):
        keras_lm.compression.measure_importance(model, [])
    quantized = keras_lm.compression.quantize(tiny_seq2seq(layers=1), "int8")
    with pytest.raises(ValueError, match="Cannot prune a quantized model"):
        keras_lm.compression.prune(quantized)
