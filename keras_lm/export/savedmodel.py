"""Export translators and text generators as string-to-string SavedModels.

Notation: B batch, S source length, P prompt length, L output length, W beams.

Tokenization, the compiled decoding loop (KV cache, beam search or sampling)
and detokenization all run inside the exported graph. The SentencePiece model
travels twice: inside the tokenizer op, which is what runs, and as the asset
`assets/sentencepiece.model`, for tools that want the vocabulary.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from keras_lm.export import batching, signatures
from keras_lm.tokenizers import check_vocabulary_matches

FORMAT_VERSION = "keras_lm.export/1"


def export_translator(
    model,
    tokenizer,
    path,
    num_beams=4,
    length_penalty=0.6,
    max_source_length=None,
    source_length_ratio=1.5,
    source_length_offset=10,
    jit_compile=False,
    overwrite=True,
    xla_signatures=True,
    batch_size=32,
    width_multiple=16,
):
    """Write a `TransformerSeq2Seq` and its tokenizer as a SavedModel.

    The `serving_default` signature takes `text: tf.string [B]` and returns
    `{"translation": tf.string [B]}`. Inputs longer than `max_source_length`
    tokens are truncated, never refused; empty strings translate to a string.
    A second signature, `translate_ids`, returns the output token ids, for
    checking exports against in-process decoding.

    With `xla_signatures` (the default), `translate_xla` and
    `translate_xla_ids` do the same with the decoding loop compiled by XLA
    (once per batch-size and width bucket, in the process that runs it):
    several times faster for `tf.saved_model.load` users and
    `saved_model_cli run`. `serving_default` stays a plain graph, because
    TensorFlow Serving runs XLA on CPU only with
    `--xla_cpu_compilation_enabled`.

    Each request is decoded as `translate_ids` decodes a test set: sorted by
    source length, in chunks of `batch_size` padded to their own longest
    source (rounded up to `width_multiple`), and returned in request order.

    Args:
        model: a trained `keras_lm.models.TransformerSeq2Seq`.
        tokenizer: the `keras_lm.tokenizers.SentencePieceTokenizer` it was
            trained with.
        path: output directory.
        num_beams: beam width (1 is greedy decoding).
        length_penalty: GNMT alpha for beam search.
        max_source_length: source tokens kept, EOS included. Defaults to the
            model's `max_sequence_length`.
        source_length_ratio: a translation has at most
            `ratio * source_tokens + offset` tokens (and fits the model).
        source_length_offset: see `source_length_ratio`.
        jit_compile: compile the decoding loop of `serving_default` and
            `translate_ids` with XLA too (TensorFlow Serving then needs
            `--xla_cpu_compilation_enabled`).
        overwrite: replace an existing export at `path`.
        xla_signatures: also write `translate_xla` and `translate_xla_ids`.
        batch_size: sentences of a request decoded together at most.
        width_multiple: chunk source widths are rounded up to a multiple of
            this (bounds the shapes XLA compiles).

    Returns:
        `path`.

    Example:
    >>> keras_lm.export.export_translator(model, tokenizer, "exports/en_fr")
    >>> import tensorflow as tf, tensorflow_text  # noqa: F401
    >>> tf.saved_model.load("exports/en_fr").signatures["serving_default"](
    ...     text=tf.constant(["Open file"]))["translation"]
    >>> tf.saved_model.load("exports/en_fr").signatures["translate_xla"](
    ...     text=tf.constant(["Open file"]))["translation"]  # compiled loop
    """
    if not hasattr(model, "encode"):
        raise ValueError(
            "export_translator needs an encoder-decoder model (TransformerSeq2Seq). "
            f"Received: {type(model).__name__}; use export_generator for a "
            "TransformerLM."
        )
    check_vocabulary_matches(tokenizer, model.vocabulary_size)
    batching.check_batching(batch_size, width_multiple)
    module = signatures.TranslatorModule(
        model,
        tokenizer,
        num_beams=num_beams,
        length_penalty=length_penalty,
        max_source_length=max_source_length or model.max_sequence_length,
        source_length_ratio=source_length_ratio,
        source_length_offset=source_length_offset,
        jit_compile=jit_compile,
        batch_size=batch_size,
        width_multiple=width_multiple,
    )
    functions = {
        "serving_default": module.translate,
        "translate_ids": module.translate_ids,
    }
    if xla_signatures:
        functions["translate_xla"] = module.translate_xla
        functions["translate_xla_ids"] = module.translate_xla_ids
    return _save(module, tokenizer, path, overwrite, functions)


def export_generator(
    model,
    tokenizer,
    path,
    max_new_tokens=64,
    max_prompt_length=None,
    top_k=None,
    jit_compile=False,
    overwrite=True,
):
    """Write a `TransformerLM` and its tokenizer as a SavedModel.

    Signatures:
        `serving_default(prompt: tf.string [B]) -> {"text": tf.string [B]}`:
        sampling with the defaults temperature 1.0, top_p 0.9, seed 0.
        `sample(prompt, temperature: float, top_p: float, seed: int)`: the
        same with every option given.
        `greedy(prompt)`: greedy decoding.
    The returned text is the continuation only, without the prompt.

    Args:
        model: a trained `keras_lm.models.TransformerLM`.
        tokenizer: its `SentencePieceTokenizer`, or the `BytePairTokenizer`
            of a converted GPT-2 (`keras_lm.convert.from_huggingface`).
        path: output directory.
        max_new_tokens: tokens generated at most per prompt.
        max_prompt_length: prompt tokens kept (the last ones); defaults to
            what `max_sequence_length` leaves after `max_new_tokens`.
        top_k: optional top-k filter, fixed at export time.
        jit_compile: compile the decoding loop with XLA (see
            `export_translator`).
        overwrite: replace an existing export at `path`.

    Returns:
        `path`.
    """
    if hasattr(model, "encode"):
        raise ValueError(
            "export_generator needs a decoder-only model (TransformerLM). "
            f"Received: {type(model).__name__}; use export_translator."
        )
    check_vocabulary_matches(tokenizer, model.vocabulary_size)
    if max_prompt_length is None:
        max_prompt_length = model.max_sequence_length - max_new_tokens
    if max_prompt_length < 1 or max_prompt_length + max_new_tokens > (
        model.max_sequence_length
    ):
        raise ValueError(
            "max_prompt_length + max_new_tokens must fit max_sequence_length="
            f"{model.max_sequence_length}, with at least one prompt token. "
            f"Received: max_prompt_length={max_prompt_length}, "
            f"max_new_tokens={max_new_tokens}"
        )
    module = signatures.GeneratorModule(
        model,
        tokenizer,
        max_new_tokens=max_new_tokens,
        max_prompt_length=max_prompt_length,
        top_k=top_k,
        jit_compile=jit_compile,
    )
    return _save(
        module,
        tokenizer,
        path,
        overwrite,
        {
            "serving_default": module.generate,
            "sample": module.sample,
            "greedy": module.greedy,
        },
    )


def load_exported(path):
    """Load an export made here, with a clear error when it is not one.

    Needs only TensorFlow and tensorflow_text; this helper adds the checks.
    """
    import tensorflow_text  # noqa: F401  registers the SentencePiece ops

    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"No SavedModel directory at '{path}'. Export one with "
            "keras_lm.export.export_translator or export_generator."
        )
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise ValueError(
            f"'{path}' is not a SavedModel (no saved_model.pb in it). Pass the "
            "directory that export_translator or export_generator wrote."
        )
    try:
        loaded = tf.saved_model.load(path)
    except OSError as error:
        raise ValueError(
            f"'{path}' holds a damaged SavedModel ({error}). Export it again "
            "with keras_lm.export.export_translator or export_generator."
        ) from error
    version = getattr(loaded, "format_version", None)
    version = version.numpy().decode() if version is not None else None
    if version != FORMAT_VERSION:
        raise ValueError(
            f"'{path}' was not written by this version of keras_lm.export "
            f"(format {version!r}, expected {FORMAT_VERSION!r}). Re-export it "
            "with the installed keras_lm."
        )
    return loaded


def _save(module, tokenizer, path, overwrite, functions):
    if os.path.exists(path):
        if not overwrite:
            raise FileExistsError(
                f"'{path}' exists. Pass overwrite=True or choose another path."
            )
        shutil.rmtree(path)
    module.format_version = tf.Variable(FORMAT_VERSION, trainable=False)
    with tempfile.TemporaryDirectory() as scratch:
        if hasattr(tokenizer, "save_assets"):
            # Tokenizers made of several files (Marian's, GPT-2's BPE) write
            # their own; the SavedModel ships them as assets.
            module.tokenizer_assets = [
                tf.saved_model.Asset(asset) for asset in tokenizer.save_assets(scratch)
            ]
        else:
            spm_path = os.path.join(scratch, "sentencepiece.model")
            with open(spm_path, "wb") as f:
                f.write(tokenizer.proto)
            module.sentencepiece_model = tf.saved_model.Asset(spm_path)
        signatures_to_save = {
            name: function.get_concrete_function()
            for name, function in functions.items()
        }
        tf.saved_model.save(module, path, signatures=signatures_to_save)
    return path
