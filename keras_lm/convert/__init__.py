"""Load and save Hugging Face checkpoints (GPT-2, Marian / OPUS-MT).

`from_huggingface(path)` reads a local model directory and returns
`(model, tokenizer)`; nothing is downloaded, and neither torch nor
transformers is needed (weights are read with safetensors' numpy API).
"""

import importlib

from keras_lm.convert.checkpoint import HuggingFaceCheckpoint

# model_type -> module providing `load(checkpoint)` and, where the
# architecture fits, `save(model, tokenizer, path)`.
_CONVERTERS = {
    "gpt2": "keras_lm.convert.gpt2",
    "marian": "keras_lm.convert.marian",
}


def supported_model_types():
    return tuple(sorted(_CONVERTERS))


def _converter(model_type):
    if model_type not in _CONVERTERS:
        raise ValueError(
            f"Unsupported model_type {model_type!r}; supported: "
            f"{', '.join(supported_model_types())}."
        )
    return importlib.import_module(_CONVERTERS[model_type])


def from_huggingface(path):
    """Returns `(model, tokenizer)` for the Hugging Face directory `path`.

    `model` is a `TransformerLM` (gpt2) or `TransformerSeq2Seq` (marian) with
    the checkpoint's special ids and generation defaults; `tokenizer` runs in
    graph, so it exports inside a SavedModel.
    """
    checkpoint = HuggingFaceCheckpoint(path)
    return _converter(checkpoint.model_type).load(checkpoint)


__all__ = ["HuggingFaceCheckpoint", "from_huggingface", "supported_model_types"]
