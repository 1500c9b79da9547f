"""The decoding loop is traced once per model and static configuration."""

import numpy as np
import pytest

from keras_lm import generation, models
from tests.generation.stubs import BigramLM

pytestmark = pytest.mark.multibackend

LM = dict(
    vocabulary_size=20,
    num_layers=1,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    max_sequence_length=12,
)


def _traces(fn):
    before = generation.trace_count()
    fn()
    return generation.trace_count() - before


def test_equal_shapes_do_not_retrace_and_a_new_batch_size_does():
    model = models.TransformerLM(**LM)
    prompts = np.array([[2, 5, 6], [2, 7, 0]], "int32")
    other_values = np.array([[2, 9, 0], [2, 4, 11]], "int32")

    def run(ids, **options):
        return generation.generate(model, ids, max_new_tokens=4, **options)

    assert _traces(lambda: run(prompts)) == 1
    assert _traces(lambda: run(other_values)) == 0
    assert _traces(lambda: run(prompts, eos_id=7)) == 0
    assert _traces(lambda: model.generate(prompts, max_new_tokens=4)) == 0
    assert _traces(lambda: run(np.concatenate([prompts, prompts]))) == 1
    assert _traces(lambda: run(prompts)) == 0


def test_values_passed_as_tensors_do_not_retrace():
    model = BigramLM({2: {4: 0.5, 5: 0.5}}, vocabulary_size=8, max_sequence_length=8)
    prompts = np.array([[2]], "int32")

    def sample(**options):
        options = dict(dict(top_p=0.9), **options)
        return generation.generate(
            model, prompts, max_new_tokens=3, method="sample", **options
        )

    def beam(**options):
        return generation.generate(
            model, prompts, max_new_tokens=3, method="beam", **options
        )

    assert _traces(lambda: sample(seed=1)) == 1
    assert _traces(lambda: sample(seed=2, temperature=0.5, top_p=0.7)) == 0
    assert _traces(lambda: beam(length_penalty=0.6)) == 1
    assert _traces(lambda: beam(length_penalty=1.0, return_all_beams=True)) == 0
    # Static choices change the graph: a new beam count, a new top-k.
    assert _traces(lambda: beam(num_beams=2)) == 1
    assert _traces(lambda: sample(seed=1, top_k=2)) == 1


def test_compiled_loop_sees_updated_weights():
    model = models.TransformerLM(**LM)
    prompts = np.array([[2, 5, 6]], "int32")
    before = generation.generate(model, prompts, max_new_tokens=6, eos_id=None)
    rng = np.random.default_rng(0)
    model.set_weights(
        [rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    after = []
    assert (
        _traces(
            lambda: after.append(
                generation.generate(model, prompts, max_new_tokens=6, eos_id=None)
            )
        )
        == 0
    )
    expected = generation.generate(
        model, prompts, max_new_tokens=6, eos_id=None, jit_compile=False
    )
    assert not np.array_equal(before, after[0])
    np.testing.assert_array_equal(after[0], expected)
