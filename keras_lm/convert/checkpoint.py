"""Reading a local Hugging Face model directory: config, weights, files.

Weights come from `model.safetensors` (numpy API, no torch) or, failing that,
`pytorch_model.bin` (needs torch, imported only then). Every accessor raises
a clear error naming the directory and the missing or mis-shaped value.
"""

import json
import os

import numpy as np

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class HuggingFaceCheckpoint:
    """A Hugging Face model directory on local disk."""

    def __init__(self, path):
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"{path!r} is not a directory; from_huggingface reads a local "
                "model directory (config.json, model.safetensors, tokenizer "
                "files), for example one saved with `save_pretrained`."
            )
        self.path = path
        self.config = self.read_json("config.json")
        self.model_type = self.config.get("model_type")
        if self.model_type is None:
            raise ValueError(f"{self.file('config.json')} has no 'model_type'.")
        self._tensors = None

    def file(self, name):
        return os.path.join(self.path, name)

    def has_file(self, name):
        return os.path.isfile(self.file(name))

    def require_file(self, *names):
        """Full path of the first of `names` present, else a clear error."""
        for name in names:
            if self.has_file(name):
                return self.file(name)
        raise FileNotFoundError(
            f"{self.path!r} has none of {list(names)} (needed for a "
            f"{self.model_type} checkpoint)."
        )

    def read_json(self, name, required=True):
        if not self.has_file(name):
            if required:
                raise FileNotFoundError(f"{self.path!r} has no {name}.")
            return {}
        with open(self.file(name), encoding="utf-8") as f:
            return json.load(f)

    @property
    def generation_config(self):
        return self.read_json("generation_config.json", required=False)

    @property
    def tensors(self):
        """Every weight as a float32/int numpy array, keyed by HF name."""
        if self._tensors is None:
            self._tensors = _load_tensors(self.require_file(*WEIGHT_FILES))
        return self._tensors

    def tensor(self, name, shape=None, *alternatives):
        """The weight `name` (or the first present of `alternatives`).

        `shape`, if given, is checked and both shapes are named on mismatch.
        """
        for candidate in (name, *alternatives):
            if candidate in self.tensors:
                value = self.tensors[candidate]
                break
        else:
            raise KeyError(
                f"Tensor {name!r} is missing from the checkpoint in "
                f"{self.path!r} ({len(self.tensors)} tensors present)."
            )
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(
                f"Tensor {candidate!r} in {self.path!r} has shape "
                f"{tuple(value.shape)}; the config implies {tuple(shape)}."
            )
        return value

    def __repr__(self):
        return f"HuggingFaceCheckpoint({self.path!r}, model_type={self.model_type!r})"


def _load_tensors(filename):
    if filename.endswith(".safetensors"):
        from safetensors.numpy import load_file

        tensors = load_file(filename)
    else:
        try:
            import torch
        except ImportError as error:
            raise ImportError(
                f"{filename} is a PyTorch pickle; reading it needs torch. "
                "Save the model with safe_serialization=True (model.safetensors) "
                "to convert it without torch."
            ) from error
        state = torch.load(filename, map_location="cpu", weights_only=True)
        tensors = {
            k: v.float().numpy() if v.is_floating_point() else v.numpy()
            for k, v in state.items()
        }
    return {
        k: np.asarray(v, "float32") if v.dtype.kind == "f" else v
        for k, v in tensors.items()
    }


def save_tensors(tensors, path):
    """Writes `{name: numpy array}` as `path/model.safetensors`."""
    from safetensors.numpy import save_file

    os.makedirs(path, exist_ok=True)
    save_file(
        {k: np.ascontiguousarray(v) for k, v in tensors.items()},
        os.path.join(path, "model.safetensors"),
        metadata={"format": "pt"},
    )


def write_json(value, path, name):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")
