"""Graph-mode training with a static sequence length (the TPU data layout)."""

import numpy as np
import tensorflow as tf

from keras_lm import models, training


def test_fit_with_static_length_and_dynamic_batch():
    # Fused Q/K/V reshaped with -1 heads lost the head axis in this layout.
    model = models.TransformerLM(
        vocabulary_size=40,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=8,
    )
    training.compile_model(model, learning_rate=1e-3, jit_compile=False)
    ids = np.random.default_rng(0).integers(1, 40, (8, 6)).astype("int32")
    data = tf.data.Dataset.from_tensor_slices(({"token_ids": ids}, ids)).batch(4)
    assert data.element_spec[1].shape.as_list() == [None, 6]
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
