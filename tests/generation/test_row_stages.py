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


def test_capacities_double_up_to_three_quarters_of_the_buffer():
    assert row_stages.capacities(0, 35, first=16) == [16, 35]
    assert row_stages.capacities(0, 59, first=16) == [16, 32, 59]
    assert row_stages.capacities(0, 128, first=16) == [16, 32, 64, 128]
    # A prefill of 20 slots: no stage smaller than 21 slots.
    assert row_stages.capacities(20, 59, first=16) == [32, 59]
    assert row_stages.capacities(0, 16, first=16) == [16]


def _spy_resize(model, calls):
    original = model.resize_cache

    def resize(cache, max_length):
        calls.append(max_length)
        return original(cache, max_length)

    model.resize_cache = resize


@pytest.mark.parametrize("mode", ["gnmt", "hf"])
def test_a_growing_cache_changes_no_beam(mode, monkeypatch):
    """A buffer of 17 slots grown through 4 and 8 slots (and rows dropped
    after): every beam and score equals the full-buffer loop's."""
    options = dict(
        method="beam",
        num_beams=3,
        max_new_tokens=16,
        return_all_beams=True,
        length_penalty_mode=mode,
    )
    sources = _sources(12)
    monkeypatch.setattr(row_stages, "MIN_ROWS", 3)
    reference = _seq2seq()
    monkeypatch.setattr(row_stages, "FIRST_CAPACITY", 1000)
    full_beams, full_scores = reference.generate(sources, **options)

    grown = _seq2seq(reference.get_weights())
    calls = []
    _spy_resize(grown, calls)
    monkeypatch.setattr(row_stages, "FIRST_CAPACITY", 4)
    beams, scores = grown.generate(sources, **options)

    assert calls == [4, 8, 17]
    np.testing.assert_array_equal(np.asarray(beams), np.asarray(full_beams))
    np.testing.assert_allclose(
        np.asarray(scores), np.asarray(full_scores), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("method", ["sample", "beam"])
def test_a_decoder_only_cache_grows_past_its_prefill(method, monkeypatch):
    """Prompts of 6 tokens (5 prefilled slots, rows of 3 and 6 prompt
    tokens) and 14 new ones: the cache grows 8 -> 20 slots, and the seeded
    samples, or the beams and their scores, equal the full-buffer loop's."""
    keras.utils.set_random_seed(5)
    config = dict(
        vocabulary_size=VOCABULARY,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
    )
    reference = keras_lm.models.TransformerLM(**config)
    # Larger weights make the next token depend on the context (the tiny
    # random model otherwise repeats one token whatever it attends to).
    reference.set_weights([3.0 * w for w in reference.get_weights()])
    prompts = np.random.default_rng(1).integers(5, VOCABULARY, (4, 6))
    prompts[:2, 3:] = 0  # right-padded: 3 tokens
    if method == "beam":
        options = dict(num_beams=2, return_all_beams=True)
    else:
        options = dict(seed=3)
    options.update(method=method, max_new_tokens=14, eos_id=None)
    monkeypatch.setattr(row_stages, "FIRST_CAPACITY", 1000)
    expected = reference.generate(prompts, **options)

    grown = keras_lm.models.TransformerLM(**config)
    grown.set_weights(reference.get_weights())
    calls = []
    _spy_resize(grown, calls)
    monkeypatch.setattr(row_stages, "FIRST_CAPACITY", 4)
    outputs = grown.generate(prompts, **options)

    assert calls == [8, 20]
    if method == "beam":
        (beams, scores), (expected, expected_scores) = outputs, expected
        np.testing.assert_allclose(
            np.asarray(scores), np.asarray(expected_scores), rtol=1e-5, atol=1e-6
        )
        outputs = beams
    np.testing.assert_array_equal(np.asarray(outputs), np.asarray(expected))
