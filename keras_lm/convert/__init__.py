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


# keras_lm model class -> module whose `save(model, tokenizer, path)` writes
# it as a Hugging Face checkpoint (where the architecture fits).
_SAVERS = {
    "TransformerLM": "keras_lm.convert.gpt2",
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


def to_huggingface(model, tokenizer, path):
    """Writes `model` and `tokenizer` as a Hugging Face directory at `path`.

    A `TransformerLM` with GPT-2's layout (learned positions, pre-norm, layer
    norm, tanh GELU, no embedding scale) becomes a `gpt2` checkpoint:
    `config.json`, `model.safetensors`, `generation_config.json`, `vocab.json`
    and `merges.txt`. A model whose options do not fit raises a `ValueError`
    naming the option. Returns `path`.
    """
    name = type(model).__name__
    if name not in _SAVERS:
        raise ValueError(
            f"to_huggingface cannot write a {name}; it writes "
            f"{', '.join(sorted(_SAVERS))}."
        )
    return importlib.import_module(_SAVERS[name]).save(model, tokenizer, path)


__all__ = [
    "HuggingFaceCheckpoint",
    "from_huggingface",
    "supported_model_types",
    "to_huggingface",
]
