"""Load and save Hugging Face checkpoints (GPT-2, Marian / OPUS-MT, Pegasus).

`from_huggingface(path)` reads a local model directory and returns
`(model, tokenizer)`; `to_huggingface(model, tokenizer, path)` writes one
where the architecture fits. Nothing is downloaded, and neither torch nor
transformers is needed (weights are read with safetensors' numpy API).
"""

import importlib

from keras_lm.convert.checkpoint import HuggingFaceCheckpoint

# model_type -> module providing `load(checkpoint)` and, where the
# architecture fits, `save(model, tokenizer, path)`.
_CONVERTERS = {
    "gpt2": "keras_lm.convert.gpt2",
    "marian": "keras_lm.convert.marian",
    "pegasus": "keras_lm.convert.pegasus",
}
# keras_lm model class -> the model_type `to_huggingface` writes it as.
_WRITERS = {
    "TransformerLM": "gpt2",
    "TransformerSeq2Seq": "pegasus",
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

    `model` is a `TransformerLM` (gpt2) or `TransformerSeq2Seq` (marian, or
    pegasus as `to_huggingface` writes it) with the checkpoint's special ids
    and generation defaults; `tokenizer` runs in graph, so it exports inside
    a SavedModel.
    """
    checkpoint = HuggingFaceCheckpoint(path)
    return _converter(checkpoint.model_type).load(checkpoint)


def to_huggingface(model, tokenizer, path):
    """Writes `model` and `tokenizer` as a Hugging Face directory at `path`.

    A `TransformerLM` with GPT-2's layout (learned positions, pre-norm, layer
    norm, tanh GELU, no embedding scale) becomes a `gpt2` checkpoint
    (`config.json`, `model.safetensors`, `generation_config.json`,
    `vocab.json`, `merges.txt`). A `TransformerSeq2Seq` in keras_lm's pre-norm
    layout becomes a Pegasus model (`PegasusForConditionalGeneration`) with
    Marian-style tokenizer files. An option the target has no place for
    raises a `ValueError` naming it. Returns `path`.
    """
    name = type(model).__name__
    if name not in _WRITERS:
        raise ValueError(
            f"to_huggingface writes {sorted(_WRITERS)}; received a {name}."
        )
    return _converter(_WRITERS[name]).save(model, tokenizer, path)


__all__ = [
    "HuggingFaceCheckpoint",
    "from_huggingface",
    "supported_model_types",
    "to_huggingface",
]
