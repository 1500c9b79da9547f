"""Decoding with real (tiny, random) models against naive references."""

import keras
import numpy as np
import pytest

from keras_lm import generation, models

pytestmark = pytest.mark.multibackend

V = 24
LM = dict(
    vocabulary_size=V,
    num_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=16,
)
SEQ2SEQ = dict(
    vocabulary_size=V,
    num_encoder_layers=1,
    num_decoder_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=16,
    dropout=0.0,
)
NEW = 6
# Right-padded prompts of lengths 2, 5 and 3.
PROMPTS = np.array(
    [[2, 7, 0, 0, 0], [2, 9, 11, 4, 13], [2, 15, 6, 0, 0]], dtype="int32"
)
SOURCES = np.array([[5, 8, 0, 0, 0, 0], [9, 4, 17, 12, 6, 21]], dtype="int32")


@pytest.fixture(scope="module")
def lm():
    keras.utils.set_random_seed(1)
    return models.TransformerLM(**LM)


@pytest.fixture(scope="module")
def seq2seq():
    keras.utils.set_random_seed(2)
    return models.TransformerSeq2Seq(**SEQ2SEQ)


def _next_log_probs(logits):
    """The generator's distribution: padding excluded, then log-softmax."""
    logits = np.asarray(logits, "float64").copy()
    logits[0] = -np.inf
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def _naive_greedy(run_model, prompts, num_new):
    """Re-run the whole model on the whole sequences for every new token.

    Sequences are padded to a fixed width so each call has the same shape;
    causality makes the padding after a position irrelevant to its logits.
    """
    sequences = [list(prompt) for prompt in prompts]
    for _ in range(num_new):
        width = LM["max_sequence_length"]
        ids = np.array([s + [0] * (width - len(s)) for s in sequences], "int32")
        logits = np.asarray(run_model(ids))
        for row, sequence in enumerate(sequences):
            next_log_probs = _next_log_probs(logits[row, len(sequence) - 1])
            sequence.append(int(np.argmax(next_log_probs)))
    return sequences


def _unpad(row):
    row = list(np.asarray(row))
    return row[: len(row) - row[::-1].index(next(t for t in row[::-1] if t))]


def test_lm_cached_greedy_matches_full_recomputation(lm):
    outputs = generation.generate(lm, PROMPTS, max_new_tokens=NEW, eos_id=None)
    assert outputs.shape == (3, 5 + NEW)
    expected = _naive_greedy(
        lambda ids: lm({"token_ids": ids}), [_unpad(p) for p in PROMPTS], NEW
    )
    for row, sequence in zip(outputs, expected):
        assert list(row) == sequence + [0] * (outputs.shape[1] - len(sequence))


def test_seq2seq_cached_greedy_matches_full_recomputation(seq2seq):
    outputs = seq2seq.generate(SOURCES, max_new_tokens=NEW, eos_id=None)
    assert outputs.shape == (2, 1 + NEW)
    expected = _naive_greedy(
        lambda ids: seq2seq({"encoder_token_ids": SOURCES, "decoder_token_ids": ids}),
        [[2], [2]],
        NEW,
    )
    np.testing.assert_array_equal(outputs, expected)


def test_row_results_do_not_depend_on_other_rows(lm):
    together = generation.generate(lm, PROMPTS, max_new_tokens=NEW, eos_id=None)
    for prompt, row in zip(PROMPTS, together):
        alone = generation.generate(
            lm, np.array([_unpad(prompt)]), max_new_tokens=NEW, eos_id=None
        )[0]
        assert _unpad(row) == list(alone)


def test_encoder_padding_does_not_change_translations(seq2seq):
    options = dict(source_length_ratio=1.0, source_length_offset=2, eos_id=None)
    together = seq2seq.generate(SOURCES, **options)
    wider = seq2seq.generate(np.pad(SOURCES, ((0, 0), (0, 3))), **options)
    for source, row, wide_row in zip(SOURCES, together, wider):
        alone = seq2seq.generate(np.array([_unpad(source)]), **options)[0]
        assert _unpad(row) == _unpad(wide_row) == list(alone)
        # The length limit follows each row's own source length.
        assert len(alone) == 1 + len(_unpad(source)) + 2


@pytest.mark.parametrize("method", ["beam", "sample"])
def test_one_beam_and_top_1_sampling_equal_greedy(lm, seq2seq, method):
    options = dict(num_beams=1) if method == "beam" else dict(top_k=1, seed=3)
    for model, inputs in [(lm, PROMPTS), (seq2seq, SOURCES)]:
        greedy = model.generate(inputs, max_new_tokens=NEW, eos_id=None)
        other = model.generate(
            inputs, max_new_tokens=NEW, eos_id=None, method=method, **options
        )
        np.testing.assert_array_equal(other, greedy)


def test_one_beam_equals_greedy_with_eos_and_no_length_penalty(lm):
    plain = generation.generate(lm, PROMPTS, max_new_tokens=NEW, eos_id=None)
    eos_id = int(plain[1, 5 + 2])  # row 1's third new token ends it
    greedy = generation.generate(lm, PROMPTS, max_new_tokens=NEW, eos_id=eos_id)
    beam = generation.generate(
        lm,
        PROMPTS,
        max_new_tokens=NEW,
        eos_id=eos_id,
        method="beam",
        num_beams=1,
        length_penalty=0.0,
    )
    np.testing.assert_array_equal(beam, greedy)


def test_eos_stops_each_row_independently(lm):
    plain = generation.generate(lm, PROMPTS, max_new_tokens=NEW, eos_id=None)
    eos_id = int(plain[1, 5 + 2])
    stopped = generation.generate(lm, PROMPTS, max_new_tokens=NEW, eos_id=eos_id)
    assert eos_id in plain[1, 5:]
    for prompt, full, row in zip(PROMPTS, plain, stopped):
        start = len(_unpad(prompt))
        new = list(full[start : start + NEW])
        if eos_id in new:
            cut = start + new.index(eos_id) + 1
            assert list(row[:cut]) == list(full[:cut])
            assert not row[cut:].any(), "tokens after EOS must be padding"
        else:
            np.testing.assert_array_equal(row, full)


def _rescore_lm(model, prompt_length, sequence, alpha):
    """log P(new tokens) / lp from full forward passes."""
    tokens = _unpad(sequence)
    # Fixed width (padding after the tokens): one traced shape for every call.
    ids = np.array([list(sequence) + [0] * (16 - len(sequence))], "int32")
    logits = np.asarray(model({"token_ids": ids}))[0]
    total = sum(
        _next_log_probs(logits[t - 1])[tokens[t]]
        for t in range(prompt_length, len(tokens))
    )
    return total / ((5 + len(tokens) - prompt_length) / 6) ** alpha


@pytest.mark.slow
def test_beam_scores_equal_rescored_log_probabilities(lm):
    """Catches beams whose cache rows were not reordered with their tokens."""
    plain = generation.generate(lm, PROMPTS, max_new_tokens=NEW, eos_id=None)
    beams, scores = generation.generate(
        lm,
        PROMPTS,
        max_new_tokens=NEW,
        method="beam",
        num_beams=3,
        eos_id=int(plain[0, 2 + 1]),
        return_all_beams=True,
    )
    assert beams.shape == (3, 3, 5 + NEW) and scores.shape == (3, 3)
    for prompt, row_beams, row_scores in zip(PROMPTS, beams, scores):
        length = len(_unpad(prompt))
        assert len({tuple(b) for b in row_beams}) == 3, "beams must differ"
        for sequence, score in zip(row_beams, row_scores):
            assert list(sequence[:length]) == _unpad(prompt)
            expected = _rescore_lm(lm, length, sequence, 0.6)
            np.testing.assert_allclose(score, expected, rtol=1e-4, atol=1e-4)


def test_seq2seq_beam_rows_match_single_row_search(seq2seq):
    """Encoder outputs and masks are repeated per beam (keras-hub#1047, #750)."""
    options = dict(method="beam", num_beams=3, max_new_tokens=NEW, eos_id=None)
    together, scores = seq2seq.generate(SOURCES, return_all_beams=True, **options)
    for row, source in enumerate(SOURCES):
        # Same width for both rows: one compiled search serves them.
        alone, alone_scores = seq2seq.generate(
            source[None], return_all_beams=True, **options
        )
        np.testing.assert_array_equal(together[row], alone[0])
        np.testing.assert_allclose(scores[row], alone_scores[0], atol=1e-5)
