"""Property-based checks of both models and greedy generation.

Random token ids, lengths and right-padding patterns; models are built once
per module (building is the slow part) and only called inside the examples.
Invariants: logits shape and finiteness, causality, padding invariance, and
generated ids in the vocabulary with padding only after EOS or the limit.

Notation: B batch, T length, V vocabulary.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_lm import generation, models

V = 40
MAX_LENGTH = 12
SIZES = dict(num_heads=2, hidden_dim=16, intermediate_dim=32)
PROPERTY_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def lm():
    return models.TransformerLM(
        vocabulary_size=V, num_layers=1, max_sequence_length=MAX_LENGTH, **SIZES
    )


@pytest.fixture(scope="module")
def seq2seq():
    return models.TransformerSeq2Seq(
        vocabulary_size=V,
        num_encoder_layers=1,
        num_decoder_layers=1,
        max_sequence_length=MAX_LENGTH,
        **SIZES,
    )


@st.composite
def padded_ids(draw, batch, max_length=8):
    """int32 [B, T] right-padded ids, every row with at least one real id."""
    length = draw(st.integers(1, max_length))
    ids = np.zeros((batch, length), "int32")
    for row in range(batch):
        real = draw(st.integers(1, length))
        ids[row, :real] = draw(
            st.lists(st.integers(1, V - 1), min_size=real, max_size=real)
        )
    return ids


@st.composite
def lm_case(draw):
    batch = draw(st.integers(1, 3))
    ids = draw(padded_ids(batch))
    cut = draw(st.integers(0, ids.shape[1] - 1))
    extra = draw(st.integers(1, MAX_LENGTH - ids.shape[1]))
    seed = draw(st.integers(0, 2**16))
    return ids, cut, extra, seed


def logits_of(model, **inputs):
    return np.asarray(model(inputs))


def change_after(ids, cut, seed):
    """Different real ids at every position after `cut` (padding stays 0)."""
    changed = ids.copy()
    later = changed[:, cut + 1 :]
    offset = np.random.default_rng(seed).integers(1, V - 1, later.shape)
    later[later > 0] = (later[later > 0] - 1 + offset[later > 0]) % (V - 1) + 1
    return changed


@PROPERTY_SETTINGS
@given(case=lm_case())
def test_lm_shapes_causality_and_padding(lm, case):
    ids, cut, extra, seed = case
    real = ids != 0
    logits = logits_of(lm, token_ids=ids)
    assert logits.shape == (*ids.shape, V)
    assert np.isfinite(logits).all()

    changed = logits_of(lm, token_ids=change_after(ids, cut, seed))
    np.testing.assert_allclose(
        changed[:, : cut + 1], logits[:, : cut + 1], atol=ATOL, rtol=0
    )

    padded = logits_of(lm, token_ids=np.pad(ids, ((0, 0), (0, extra))))
    np.testing.assert_allclose(
        padded[:, : ids.shape[1]][real], logits[real], atol=ATOL, rtol=0
    )


@st.composite
def seq2seq_case(draw):
    batch = draw(st.integers(1, 3))
    source = draw(padded_ids(batch))
    target = draw(padded_ids(batch))
    cut = draw(st.integers(0, target.shape[1] - 1))
    source_extra = draw(st.integers(1, MAX_LENGTH - source.shape[1]))
    target_extra = draw(st.integers(1, MAX_LENGTH - target.shape[1]))
    seed = draw(st.integers(0, 2**16))
    return source, target, cut, source_extra, target_extra, seed


@pytest.mark.slow
@PROPERTY_SETTINGS
@given(case=seq2seq_case())
def test_seq2seq_shapes_causality_and_padding(seq2seq, case):
    source, target, cut, source_extra, target_extra, seed = case
    real = target != 0

    def run(encoder, decoder):
        return logits_of(seq2seq, encoder_token_ids=encoder, decoder_token_ids=decoder)

    logits = run(source, target)
    assert logits.shape == (*target.shape, V)
    assert np.isfinite(logits).all()

    changed = run(source, change_after(target, cut, seed))
    np.testing.assert_allclose(
        changed[:, : cut + 1], logits[:, : cut + 1], atol=ATOL, rtol=0
    )

    more_source_padding = run(np.pad(source, ((0, 0), (0, source_extra))), target)
    np.testing.assert_allclose(
        more_source_padding[real], logits[real], atol=ATOL, rtol=0
    )
    more_target_padding = run(source, np.pad(target, ((0, 0), (0, target_extra))))
    np.testing.assert_allclose(
        more_target_padding[:, : target.shape[1]][real], logits[real], atol=ATOL, rtol=0
    )


# One shape for every example: generate() compiles once per shape.
BATCH, WIDTH, NEW = 2, 5, 6


@st.composite
def prompts(draw):
    ids = np.zeros((BATCH, WIDTH), "int32")
    for row in range(BATCH):
        real = draw(st.integers(1, WIDTH))
        ids[row, :real] = draw(
            st.lists(st.integers(1, V - 1), min_size=real, max_size=real)
        )
    return ids, draw(st.integers(0, 10**6))


def check_generated(new_tokens, limits, eos_id):
    """Ids in [0, V); 0 only after the row's EOS or past its limit."""
    assert new_tokens.min() >= 0 and new_tokens.max() < V
    for row, limit in zip(new_tokens, limits):
        eos = np.flatnonzero(row == eos_id) if eos_id is not None else []
        end = min(limit, eos[0] + 1 if len(eos) else limit)
        assert (row[:end] != 0).all(), row
        assert (row[end:] == 0).all(), row


def check_eos_truncates(model, ids, no_eos, start, pick):
    """With eos_id set to a generated token, rows stop right after it."""
    candidates = no_eos[0, start : start + NEW]
    eos_id = int(candidates[pick % len(candidates)])
    with_eos = generation.generate(
        model, ids, max_new_tokens=NEW, eos_id=eos_id, jit_compile=False
    )
    assert with_eos.shape == no_eos.shape
    return with_eos, eos_id


@PROPERTY_SETTINGS
@given(case=prompts())
def test_lm_greedy_generation(lm, case):
    ids, pick = case
    lengths = (ids != 0).sum(axis=1)
    out = generation.generate(
        lm, ids, max_new_tokens=NEW, eos_id=None, jit_compile=False
    )
    assert out.shape == (BATCH, WIDTH + NEW)
    new = np.zeros((BATCH, NEW), "int32")
    for row, length in enumerate(lengths):
        np.testing.assert_array_equal(out[row, :length], ids[row, :length])
        new[row] = out[row, length : length + NEW]
        assert (out[row, length + NEW :] == 0).all()
    check_generated(new, [NEW] * BATCH, None)

    with_eos, eos_id = check_eos_truncates(lm, ids, out, lengths[0], pick)
    for row, length in enumerate(lengths):
        generated = with_eos[row, length : length + NEW]
        check_generated(generated[None], [NEW], eos_id)
        stop = np.flatnonzero(new[row] == eos_id)
        keep = stop[0] + 1 if len(stop) else NEW
        np.testing.assert_array_equal(generated[:keep], new[row, :keep])


@PROPERTY_SETTINGS
@given(case=prompts())
def test_seq2seq_greedy_generation(seq2seq, case):
    source, pick = case
    out = generation.generate(
        seq2seq, source, max_new_tokens=NEW, eos_id=None, jit_compile=False
    )
    assert out.shape == (BATCH, 1 + NEW)
    assert (out[:, 0] == 2).all()  # generate()'s default bos_id
    check_generated(out[:, 1:], [NEW] * BATCH, None)

    with_eos, eos_id = check_eos_truncates(seq2seq, source, out, 1, pick)
    check_generated(with_eos[:, 1:], [NEW] * BATCH, eos_id)
    for row in range(BATCH):
        stop = np.flatnonzero(out[row, 1:] == eos_id)
        keep = 1 + (stop[0] + 1 if len(stop) else NEW)
        np.testing.assert_array_equal(with_eos[row, :keep], out[row, :keep])
