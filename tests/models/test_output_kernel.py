"""The output projection decoding hoists out of its loop (model.output_kernel)."""

import keras
import numpy as np
import pytest

from keras_lm.models import TransformerLM, TransformerSeq2Seq


def _lm(**kwargs):
    keras.utils.set_random_seed(0)
    options = dict(
        vocabulary_size=50,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
    )
    options.update(kwargs)
    return TransformerLM(**options)


@pytest.mark.multibackend
def test_tied_kernel_is_the_transposed_table_and_decode_step_uses_it():
    model = _lm()
    kernel = keras.ops.convert_to_numpy(model.output_kernel())
    table = keras.ops.convert_to_numpy(model.token_embedding.embeddings)
    np.testing.assert_array_equal(kernel, table.T)
    assert kernel.dtype == np.float32
    ids = np.array([[2, 7, 9, 11]], "int32")
    cache = model.empty_cache(1, 8)
    hoisted, _ = model.decode_step(ids, cache, 0, model.output_kernel())
    plain, _ = model.decode_step(ids, cache, 0)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(hoisted),
        keras.ops.convert_to_numpy(plain),
        atol=1e-6,
    )
    # A kernel other than the table's changes the logits: decode_step reads it.
    other, _ = model.decode_step(ids, cache, 0, model.output_kernel() * 2.0)
    assert not np.allclose(
        keras.ops.convert_to_numpy(other), keras.ops.convert_to_numpy(plain)
    )


@pytest.mark.multibackend
def test_untied_and_quantized_tables_keep_their_own_projection():
    assert _lm(tie_embeddings=False).output_kernel() is None
    quantized = _lm()
    quantized.token_embedding.quantize("int8")
    assert quantized.output_kernel() is None


def test_greedy_and_beam_decode_the_same_with_and_without_the_hoisted_kernel():
    lm, reference = _lm(), _lm()
    reference.output_kernel = lambda: None
    prompts = np.array([[2, 7, 9], [2, 5, 4]], "int32")
    for method in ("greedy", "beam"):
        np.testing.assert_array_equal(
            lm.generate(prompts, max_new_tokens=6, method=method, eos_id=None),
            reference.generate(prompts, max_new_tokens=6, method=method, eos_id=None),
        )
    sources = np.array([[7, 9, 3, 0], [5, 3, 0, 0]], "int32")
    hoisted, reference = _seq2seq(), _seq2seq()
    # A separate model: generate caches its compiled function per model.
    reference.output_kernel = lambda: None
    np.testing.assert_array_equal(
        hoisted.generate(sources, method="beam", num_beams=2),
        reference.generate(sources, method="beam", num_beams=2),
    )


def _seq2seq():
    keras.utils.set_random_seed(0)
    return TransformerSeq2Seq(
        vocabulary_size=50,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
    )
