"""Beam search drops done rows between stages without changing any result."""

import keras
import numpy as np
import pytest

import keras_lm
from keras_lm.generation import row_stages

pytestmark = pytest.mark.multibackend

VOCABULARY = 40


def test_stage_sizes_halve_down_to_the_smallest_stage():
    assert row_stages.stage_sizes(32, 4) == [32, 16, 8, 4]
    assert row_stages.stage_sizes(13, 4) == [13, 7, 4]
    assert row_stages.stage_sizes(5, 4) == [5, 4]
    assert row_stages.stage_sizes(4, 4) == [4]
    assert row_stages.stage_sizes(3, 4) == [3]
    assert row_stages.stage_sizes(9, 1) == [9, 5, 3, 2, 1]


def _seq2seq(weights=None):
    keras.utils.set_random_seed(3)
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=VOCABULARY,
        num_encoder_layers=1,
        num_decoder_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=32,
        dropout=0.0,
    )
    if weights is not None:
        model.set_weights(weights)
    return model


def _sources(rows):
    """Right-padded sources of lengths 2 ... 11, ending with EOS."""
    special = keras_lm.SpecialIds.from_value(None)
    rng = np.random.default_rng(0)
    sources = np.full((rows, 12), special.pad_id, "int32")
    for row in range(rows):
        length = 2 + row % 10
        sources[row, : length - 1] = rng.integers(5, VOCABULARY, length - 1)
        sources[row, length - 1] = special.eos_id
    return sources


@pytest.mark.parametrize("mode", ["gnmt", "hf"])
def test_dropping_done_rows_changes_no_beam(mode, monkeypatch):
    """12 rows with limits of 2 + source length: they end at 10 different
    steps, so the staged loop (12, 6, 3 rows) drops rows twice. Every beam
    and score equals the one-stage loop's, at its own row."""
    reference = _seq2seq()
    sources = _sources(12)
    options = dict(
        method="beam",
        num_beams=3,
        max_new_tokens=16,
        source_length_ratio=1.0,
        source_length_offset=2,
        return_all_beams=True,
        length_penalty_mode=mode,
    )
    monkeypatch.setattr(row_stages, "MIN_ROWS", 12)
    single_beams, single_scores = reference.generate(sources, **options)

    staged = _seq2seq(reference.get_weights())
    monkeypatch.setattr(row_stages, "MIN_ROWS", 3)
    taken = []
    original_take = row_stages._take_rows
    monkeypatch.setattr(
        row_stages,
        "_take_rows",
        lambda structure, indices: (
            taken.append(indices) or original_take(structure, indices)
        ),
    )
    beams, scores = staged.generate(sources, **options)

    assert taken, "the staged loop never dropped rows"
    np.testing.assert_array_equal(np.asarray(beams), np.asarray(single_beams))
    np.testing.assert_allclose(
        np.asarray(scores), np.asarray(single_scores), rtol=1e-5, atol=1e-6
    )
    # The rows really end at different steps (else nothing would be dropped).
    special = keras_lm.SpecialIds.from_value(None)
    lengths = (np.asarray(beams)[:, 0] != special.pad_id).sum(axis=1)
    assert len(set(lengths.tolist())) >= 5


def test_a_batch_no_larger_than_the_smallest_stage_runs_one_loop(monkeypatch):
    monkeypatch.setattr(row_stages, "MIN_ROWS", 4)
    taken = []
    monkeypatch.setattr(
        row_stages, "_take_rows", lambda structure, indices: taken.append(indices)
    )
    model = _seq2seq()
    model.generate(_sources(4), method="beam", num_beams=2, max_new_tokens=4)
    assert not taken
