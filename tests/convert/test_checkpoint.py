import json

import numpy as np
import pytest

from keras_lm import convert
from keras_lm.convert.checkpoint import HuggingFaceCheckpoint, save_tensors


def _directory(tmp_path, config, tensors=None):
    (tmp_path / "config.json").write_text(json.dumps(config))
    if tensors is not None:
        save_tensors(tensors, str(tmp_path))
    return str(tmp_path)


def test_unsupported_model_type_lists_supported(tmp_path):
    path = _directory(tmp_path, {"model_type": "bert"})
    with pytest.raises(ValueError, match="'bert'.*gpt2, marian"):
        convert.from_huggingface(path)


def test_not_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        convert.from_huggingface(str(tmp_path / "missing"))


def test_missing_weights_file_named(tmp_path):
    checkpoint = HuggingFaceCheckpoint(_directory(tmp_path, {"model_type": "gpt2"}))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        checkpoint.tensors  # noqa: B018


def test_tensor_missing_and_wrong_shape(tmp_path):
    path = _directory(
        tmp_path, {"model_type": "gpt2"}, {"wte.weight": np.ones((5, 3), "float32")}
    )
    checkpoint = HuggingFaceCheckpoint(path)
    np.testing.assert_array_equal(checkpoint.tensor("wte.weight", (5, 3)), 1.0)
    with pytest.raises(KeyError, match="'wpe.weight' is missing"):
        checkpoint.tensor("wpe.weight")
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(6, 3\)"):
        checkpoint.tensor("wte.weight", (6, 3))
    # An alternative name (e.g. with a "transformer." prefix) is accepted.
    assert checkpoint.tensor("transformer.wte.weight", None, "wte.weight").shape == (
        5,
        3,
    )
