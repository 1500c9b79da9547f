"""keras_lm's pre-norm `TransformerSeq2Seq` <-> a transformers Pegasus directory.

transformers' Pegasus is exactly the layout of keras_lm's presets: pre-norm
blocks with a final LayerNorm per stack (eps 1e-5), biases everywhere,
token embeddings scaled by sqrt(D) and tied to the output projection, a
`final_logits_bias`, and the sinusoid table of Marian (sines in the first
half of the features, cosines in the second). A model built with keras_lm's
default interleaved sinusoids is written with its hidden features
reordered (even ones first, then odd ones): every weight follows, the
network computes the same function, and transformers' table applies.
`config.json` records the layout and whether the model had a logit bias
(under `keras_lm`, a key transformers keeps and ignores), so reading the
directory back undoes the reordering and gives the same model and weights; a
Pegasus directory from elsewhere reads as a `sinusoid_layout="concat"` model
with a logit bias.

The tokenizer is written as Marian's files (`source.spm` = `target.spm`,
`vocab.json` = the SentencePiece ids), which transformers' `MarianTokenizer`
reads with the same ids. CTranslate2's converter accepts the directory; its
Pegasus loader starts decoding with the pad token, so set its decoder start
token to the BOS piece (`<s>`) for a keras_lm model, whose targets start
with BOS.

Notation: D width, N heads, H head size, F feed-forward width, V vocabulary.
"""

import os

import numpy as np
from keras import ops

from keras_lm.convert import marian
from keras_lm.convert.checkpoint import save_tensors, write_json
from keras_lm.special_ids import SpecialIds

# keras_lm activation -> transformers' name for the same function.
_ACTIVATION_NAMES = {"relu": "relu", "gelu": "gelu_new", "silu": "swish"}
_TOKENIZER_FILES = ("source.spm", "target.spm", "vocab.json")
# Where config.json records what Pegasus has no field for: the sinusoid
# layout the weights were written from, and whether the model had a logit bias.
_KERAS_LM_KEY = "keras_lm"


def load(checkpoint):
    """`(TransformerSeq2Seq, tokenizer)` from a Pegasus `HuggingFaceCheckpoint`
    whose tokenizer is stored as Marian's files (as `save` writes them)."""
    from keras_lm.models import TransformerSeq2Seq

    config = checkpoint.config
    options = marian.model_options(config, checkpoint.path, normalize_first=True)
    options["share_embeddings"] = marian.share_embeddings(checkpoint, options)
    tokenizer = _read_tokenizer(checkpoint)
    bos = config.get("bos_token_id")
    if tokenizer.special_ids.bos_id is None:
        bos = None
    start = config.get("decoder_start_token_id", config["pad_token_id"])
    special_ids = SpecialIds(
        pad_id=config["pad_token_id"],
        unk_id=tokenizer.special_ids.unk_id,
        bos_id=bos,
        eos_id=marian.single_id(config.get("eos_token_id", 1), "eos_token_id"),
        decoder_start_id=None if start == bos else start,
    )
    written = config.get(_KERAS_LM_KEY) or {}
    layout = written.get("sinusoid_layout", "concat")
    options["sinusoid_layout"] = layout
    bias = checkpoint.tensor("final_logits_bias")
    if written.get("logit_bias") is False and not np.any(bias):
        options["logit_bias"] = False
    model = TransformerSeq2Seq(**options, special_ids=special_ids)
    if layout == "interleaved":
        checkpoint = _InOriginalOrder(checkpoint, np.argsort(_feature_order(model)))
    marian.set_weights(model, checkpoint)
    marian.check_tokenizer(
        tokenizer, options["vocabulary_size"], special_ids, checkpoint.path
    )
    return model, tokenizer


def _read_tokenizer(checkpoint):
    """keras_lm's own SentencePieceTokenizer when the files are one
    SentencePiece model with its own ids (what `save` writes), else a
    MarianTokenizer."""
    import json

    from keras_lm.tokenizers import MarianTokenizer, SentencePieceTokenizer

    missing = [n for n in _TOKENIZER_FILES if not checkpoint.has_file(n)]
    if missing:
        raise FileNotFoundError(
            f"{checkpoint.path!r} lacks the tokenizer files {missing}. keras_lm "
            "reads Pegasus directories whose tokenizer is stored as Marian's "
            f"{list(_TOKENIZER_FILES)}, as keras_lm.convert.to_huggingface "
            "writes them."
        )
    with open(checkpoint.file("source.spm"), "rb") as f:
        source = f.read()
    with open(checkpoint.file("target.spm"), "rb") as f:
        target = f.read()
    with open(checkpoint.file("vocab.json"), encoding="utf-8") as f:
        vocabulary = json.load(f)
    if source == target:
        tokenizer = SentencePieceTokenizer(source)
        pieces = {tokenizer.id_to_token(i): i for i in range(len(vocabulary))}
        if tokenizer.vocabulary_size() == len(vocabulary) and pieces == vocabulary:
            return tokenizer
    start = checkpoint.config.get("decoder_start_token_id")
    return MarianTokenizer.from_directory(checkpoint.path, decoder_start_id=start)


def save(model, tokenizer, path):
    """Write `model` and `tokenizer` as a transformers Pegasus directory."""
    check_fits(model)
    from keras_lm.generation.text import check_same_special_ids
    from keras_lm.tokenizers import check_vocabulary_matches

    check_vocabulary_matches(tokenizer, model.vocabulary_size)
    special_ids = check_same_special_ids(tokenizer, model)
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    save_tensors(tensors(model), path)
    write_json(config(model, special_ids), path, "config.json")
    _write_tokenizer(tokenizer, path, model.max_sequence_length)
    return path


def check_fits(model):
    """Raise `ValueError` naming the first option Pegasus has no place for."""
    expected = {
        "normalize_first": True,
        "normalization": "layer_norm",
        "layer_norm_epsilon": 1e-5,
        "position_encoding": "sinusoidal",
        "tie_embeddings": True,
        "share_embeddings": True,
    }
    for name, value in expected.items():
        if getattr(model, name) != value:
            raise ValueError(
                f"A {type(model).__name__} with {name}={getattr(model, name)!r} "
                f"does not fit transformers' Pegasus, which has {name}={value!r}."
            )
    if model.activation not in _ACTIVATION_NAMES:
        raise ValueError(
            f"activation={model.activation!r} does not fit transformers' Pegasus; "
            f"it fits {sorted(_ACTIVATION_NAMES)}."
        )
    if model.num_kv_heads not in (None, model.num_heads):
        raise ValueError(
            f"num_kv_heads={model.num_kv_heads} (grouped-query attention) does "
            "not fit transformers' Pegasus, which has one key/value head per "
            "query head."
        )
    if not model.decoder_blocks[0].use_bias:
        raise ValueError("use_bias=False does not fit transformers' Pegasus.")


class _InOriginalOrder:
    """A checkpoint whose tensors are read with their hidden features put
    back in keras_lm's order (the inverse of `_feature_order`)."""

    def __init__(self, checkpoint, inverse_order):
        self._checkpoint = checkpoint
        self._inverse = inverse_order
        self.path = checkpoint.path

    def tensor(self, name, shape=None, *alternatives):
        value = self._checkpoint.tensor(name, shape, *alternatives)
        axis = _hidden_axis(name)
        return value if axis is None else np.take(value, self._inverse, axis=axis)


def _hidden_axis(name):
    """The axis of a Pegasus tensor that runs over the residual features D
    (torch's [out, in] layout), or None."""
    if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight")):
        return 1
    if name.endswith(("fc1.weight", "embed_tokens.weight", "shared.weight")):
        return 1
    if name == "lm_head.weight":
        return 1
    if name.endswith(("out_proj.weight", "fc2.weight", "out_proj.bias", "fc2.bias")):
        return 0
    if "layer_norm" in name:
        return 0
    return None  # projection biases into heads or F, final_logits_bias


def config(model, special_ids):
    """Pegasus `config.json` contents for `model`."""
    start = special_ids.start_id
    return {
        "model_type": "pegasus",
        "architectures": ["PegasusForConditionalGeneration"],
        "vocab_size": model.vocabulary_size,
        "d_model": model.hidden_dim,
        "encoder_layers": model.num_encoder_layers,
        "decoder_layers": model.num_decoder_layers,
        "encoder_attention_heads": model.num_heads,
        "decoder_attention_heads": model.num_heads,
        "encoder_ffn_dim": model.intermediate_dim,
        "decoder_ffn_dim": model.intermediate_dim,
        "max_position_embeddings": model.max_sequence_length,
        "activation_function": _ACTIVATION_NAMES[model.activation],
        "scale_embedding": bool(model.scale_embeddings),
        "dropout": model.dropout,
        "attention_dropout": model.dropout,
        "activation_dropout": model.dropout,
        "pad_token_id": special_ids.pad_id,
        "bos_token_id": special_ids.bos_id,
        "eos_token_id": special_ids.eos_id,
        "forced_eos_token_id": special_ids.eos_id,
        "decoder_start_token_id": start,
        "tie_word_embeddings": True,
        "is_encoder_decoder": True,
        "use_cache": True,
        # Pre-norm, as CTranslate2's converter reads it (transformers 5's
        # PegasusConfig no longer sets this attribute, so write it).
        "normalize_before": True,
        "normalize_embedding": False,
        _KERAS_LM_KEY: {
            "sinusoid_layout": model.sinusoid_layout,
            "logit_bias": model.logit_bias,
        },
    }


def _feature_order(model):
    """Where each of transformers' features comes from in `model`: the
    identity for concat sinusoids; evens then odds for interleaved ones."""
    d = model.hidden_dim
    if model.sinusoid_layout == "concat":
        return np.arange(d)
    return np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])


def tensors(model):
    """`{name: float32 array}` in transformers' Pegasus layout."""
    order = _feature_order(model)
    d, v = model.hidden_dim, model.vocabulary_size

    def value(variable):
        return np.asarray(ops.convert_to_numpy(variable), "float32")

    out = {
        "model.shared.weight": value(model.token_embedding.embeddings)[:, order],
        "final_logits_bias": (
            value(model.logit_bias_layer.bias)[None]
            if model.logit_bias_layer is not None
            else np.zeros((1, v), "float32")
        ),
    }
    table = _sinusoids(model.max_sequence_length, d)
    for stack, blocks, norm in (
        ("encoder", model.encoder_blocks, model.encoder_norm),
        ("decoder", model.decoder_blocks, model.decoder_norm),
    ):
        out[f"model.{stack}.embed_positions.weight"] = table
        _norm(out, f"model.{stack}.layer_norm", norm, order, value)
        for i, block in enumerate(blocks):
            prefix = f"model.{stack}.layers.{i}."
            parts = [("self_attn", block.self_attention, block.self_attention_norm)]
            if stack == "decoder":
                parts.append(
                    ("encoder_attn", block.cross_attention, block.cross_attention_norm)
                )
            for name, attention, attention_norm in parts:
                _attention(out, prefix + name, attention, order, value)
                _norm(out, f"{prefix}{name}_layer_norm", attention_norm, order, value)
            out[prefix + "fc1.weight"] = value(block.ffn_intermediate.kernel)[order].T
            out[prefix + "fc1.bias"] = value(block.ffn_intermediate.bias)
            out[prefix + "fc2.weight"] = value(block.ffn_output.kernel)[:, order].T
            out[prefix + "fc2.bias"] = value(block.ffn_output.bias)[order]
            _norm(out, prefix + "final_layer_norm", block.ffn_norm, order, value)
    return out


def _attention(out, prefix, attention, order, value):
    n, h = attention.num_heads, attention.key_dim
    for name, dense in (
        ("q_proj", attention.query_dense),
        ("k_proj", attention.key_dense),
        ("v_proj", attention.value_dense),
    ):
        kernel = value(dense.kernel)[order]  # [D, N, H]
        out[f"{prefix}.{name}.weight"] = kernel.reshape(-1, n * h).T  # [N*H, D]
        out[f"{prefix}.{name}.bias"] = value(dense.bias).reshape(n * h)
    kernel = value(attention.output_dense.kernel).reshape(n * h, -1)  # [N*H, D]
    out[f"{prefix}.out_proj.weight"] = kernel[:, order].T  # [D, N*H]
    out[f"{prefix}.out_proj.bias"] = value(attention.output_dense.bias)[order]


def _norm(out, prefix, norm, order, value):
    out[prefix + ".weight"] = value(norm.gamma)[order]
    out[prefix + ".bias"] = value(norm.beta)[order]


def _sinusoids(length, width):
    """transformers' (Marian / Pegasus) table, computed in float64 as there."""
    positions = np.arange(length)[:, None]
    angles = positions / np.power(10000.0, 2 * np.arange(width // 2) / width)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype("float32")


def _write_tokenizer(tokenizer, path, max_length):
    from keras_lm.tokenizers import MarianTokenizer

    if isinstance(tokenizer, MarianTokenizer):
        if tokenizer.target_vocabulary is not None:
            raise ValueError(
                "A MarianTokenizer with a separate target vocabulary does not "
                "fit transformers' Pegasus, which has one vocabulary."
            )
        source, target = tokenizer.source_proto, tokenizer.target_proto
        pieces = list(tokenizer.vocabulary)
        names = (tokenizer.unk_token, tokenizer.eos_token, tokenizer.pad_token)
    else:
        source = target = tokenizer.proto
        pieces = [tokenizer.id_to_token(i) for i in range(tokenizer.vocabulary_size())]
        special = tokenizer.special_ids
        names = tuple(
            pieces[i] for i in (special.unk_id, special.eos_id, special.pad_id)
        )
    for name, proto in (("source.spm", source), ("target.spm", target)):
        with open(os.path.join(path, name), "wb") as f:
            f.write(proto)
    write_json({piece: i for i, piece in enumerate(pieces)}, path, "vocab.json")
    unk, eos, pad = names
    write_json(
        {
            "tokenizer_class": "MarianTokenizer",
            "unk_token": unk,
            "eos_token": eos,
            "pad_token": pad,
            "model_max_length": max_length,
            "separate_vocabs": False,
        },
        path,
        "tokenizer_config.json",
    )
