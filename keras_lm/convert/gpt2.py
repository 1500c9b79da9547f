"""GPT-2 (Hugging Face `model_type` "gpt2") <-> `TransformerLM`.

GPT-2 is a pre-norm decoder with learned positions from 0, no embedding
scale, the tanh form of GELU, biases everywhere, a final norm (`ln_f`) and an
output projection tied to the token embedding. Its `Conv1D` weights are
stored [in, out]; `c_attn` holds query, key and value side by side on the
output axis. Names may carry a `transformer.` prefix (GPT2LMHeadModel) or
not (GPT2Model).
"""

import os

import keras
import numpy as np

from keras_lm.convert.checkpoint import save_tensors, write_json
from keras_lm.generation.defaults import from_huggingface_generation_config
from keras_lm.special_ids import SpecialIds

ACTIVATIONS = {"gelu_new": "gelu_approximate", "gelu_pytorch_tanh": "gelu_approximate"}


def load(checkpoint):
    """`(TransformerLM, BytePairTokenizer)` from a `HuggingFaceCheckpoint`."""
    from keras_lm.models import TransformerLM

    config = checkpoint.config
    options = _model_options(config, checkpoint.path)
    special_ids = _special_ids(config, checkpoint.generation_config)
    tokenizer = load_tokenizer(checkpoint, special_ids)
    vocabulary_size = options["vocabulary_size"]
    if tokenizer.vocabulary_size() != vocabulary_size:
        raise ValueError(
            f"The tokenizer in {checkpoint.path!r} has "
            f"{tokenizer.vocabulary_size()} tokens but the model's vocab_size is "
            f"{vocabulary_size}; they must match."
        )
    model = TransformerLM(
        **options,
        special_ids=special_ids,
        generation_config=from_huggingface_generation_config(
            checkpoint.generation_config, vocabulary_size
        ),
    )
    _set_weights(model, checkpoint, options)
    return model, tokenizer


def _model_options(config, path):
    def get(name, default=None):
        value = config.get(name, default)
        if value is None:
            raise ValueError(f"config.json in {path!r} has no {name!r}.")
        return value

    activation = config.get("activation_function", "gelu_new")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation_function={activation!r} in {path!r} is not supported; "
            f"keras_lm converts {sorted(ACTIVATIONS)}."
        )
    for name, expected in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("reorder_and_upcast_attn", False),
        ("add_cross_attention", False),
    ):
        if config.get(name, expected) != expected:
            raise ValueError(
                f"{name}={config[name]!r} in {path!r} is not supported (keras_lm "
                f"converts GPT-2 with {name}={expected})."
            )
    hidden_dim = get("n_embd")
    return {
        "vocabulary_size": get("vocab_size"),
        "num_layers": get("n_layer"),
        "num_heads": get("n_head"),
        "hidden_dim": hidden_dim,
        "intermediate_dim": config.get("n_inner") or 4 * hidden_dim,
        "max_sequence_length": get("n_positions"),
        "activation": ACTIVATIONS[activation],
        "normalize_first": True,
        "position_encoding": "learned",
        "tie_embeddings": bool(config.get("tie_word_embeddings", True)),
        "normalization": "layer_norm",
        "layer_norm_epsilon": float(config.get("layer_norm_epsilon", 1e-5)),
        "scale_embeddings": False,
    }


def _one_id(value):
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _special_ids(config, generation_config):
    def pick(name):
        value = config.get(name)
        return _one_id(generation_config.get(name) if value is None else value)

    eos = pick("eos_token_id")
    return SpecialIds(
        pad_id=pick("pad_token_id"),
        unk_id=eos,
        bos_id=pick("bos_token_id"),
        eos_id=eos,
    )


def load_tokenizer(checkpoint, special_ids=None):
    """The `BytePairTokenizer` of a GPT-2 directory: `vocab.json` and
    `merges.txt`, or else the BPE model inside `tokenizer.json`."""
    from keras_lm.tokenizers.byte_pair import BytePairTokenizer

    if checkpoint.has_file("vocab.json") and checkpoint.has_file("merges.txt"):
        return BytePairTokenizer(
            checkpoint.file("vocab.json"),
            checkpoint.file("merges.txt"),
            special_ids=special_ids,
        )
    if checkpoint.has_file("tokenizer.json"):
        model = checkpoint.read_json("tokenizer.json").get("model") or {}
        if model.get("type") != "BPE" or "vocab" not in model:
            raise ValueError(
                f"{checkpoint.file('tokenizer.json')} holds no BPE model; a GPT-2 "
                "tokenizer needs vocab.json and merges.txt."
            )
        vocabulary = dict(model["vocab"])
        added = checkpoint.read_json("tokenizer.json").get("added_tokens") or []
        for token in added:
            vocabulary.setdefault(token["content"], token["id"])
        return BytePairTokenizer(vocabulary, model["merges"], special_ids=special_ids)
    raise FileNotFoundError(
        f"{checkpoint.path!r} has no GPT-2 tokenizer files: it needs vocab.json "
        "and merges.txt (or tokenizer.json)."
    )


def _tensor_reader(checkpoint):
    names = checkpoint.tensors
    prefix = "transformer." if any(k.startswith("transformer.") for k in names) else ""

    def read(name, shape):
        return checkpoint.tensor(prefix + name, shape)

    return read


def _set_weights(model, checkpoint, options):
    read = _tensor_reader(checkpoint)
    d = options["hidden_dim"]
    f = options["intermediate_dim"]
    v = options["vocabulary_size"]
    heads = options["num_heads"]
    head_dim = d // heads
    embedding = model.token_embedding
    embedding.embeddings.assign(read("wte.weight", (v, d)))
    if not options["tie_embeddings"]:
        head = checkpoint.tensor("lm_head.weight", (v, d))
        embedding.reverse_embeddings.assign(head.T)
    model.position_layer.position_embeddings.assign(
        read("wpe.weight", (options["max_sequence_length"], d))
    )
    for i, block in enumerate(model.blocks):
        name = f"h.{i}."
        attention = block.self_attention
        qkv = read(name + "attn.c_attn.weight", (d, 3 * d))
        qkv_bias = read(name + "attn.c_attn.bias", (3 * d,))
        dense_layers = (
            attention.query_dense,
            attention.key_dense,
            attention.value_dense,
        )
        for j, dense in enumerate(dense_layers):
            part = slice(j * d, (j + 1) * d)
            dense.kernel.assign(qkv[:, part].reshape(d, heads, head_dim))
            dense.bias.assign(qkv_bias[part].reshape(heads, head_dim))
        attention.output_dense.kernel.assign(
            read(name + "attn.c_proj.weight", (d, d)).reshape(heads, head_dim, d)
        )
        attention.output_dense.bias.assign(read(name + "attn.c_proj.bias", (d,)))
        _set_norm(block.self_attention_norm, read, name + "ln_1", d)
        _set_norm(block.ffn_norm, read, name + "ln_2", d)
        block.ffn_intermediate.kernel.assign(read(name + "mlp.c_fc.weight", (d, f)))
        block.ffn_intermediate.bias.assign(read(name + "mlp.c_fc.bias", (f,)))
        block.ffn_output.kernel.assign(read(name + "mlp.c_proj.weight", (f, d)))
        block.ffn_output.bias.assign(read(name + "mlp.c_proj.bias", (d,)))
    _set_norm(model.final_norm, read, "ln_f", d)


def _set_norm(norm, read, name, d):
    norm.gamma.assign(read(name + ".weight", (d,)))
    norm.beta.assign(read(name + ".bias", (d,)))


# Options of a TransformerLM and the values GPT-2's layout has.
_GPT2_LAYOUT = {
    "position_encoding": ("learned",),
    "normalize_first": (True,),
    "normalization": ("layer_norm",),
    "scale_embeddings": (False,),
    "activation": ("gelu_approximate", "gelu"),
}


def check_fits(model):
    """Raise `ValueError` naming the first option GPT-2 cannot express."""
    for name, allowed in _GPT2_LAYOUT.items():
        value = getattr(model, name)
        if value not in allowed:
            raise ValueError(
                f"This TransformerLM has {name}={value!r}; a GPT-2 checkpoint needs "
                f"{name} in {list(allowed)} ('gelu' is keras_lm's tanh GELU, as "
                "GPT-2's). Train with those options to export to Hugging Face."
            )
    if model.num_kv_heads not in (None, model.num_heads):
        raise ValueError(
            f"This TransformerLM has num_kv_heads={model.num_kv_heads}; GPT-2 has "
            "no grouped-query attention (num_kv_heads must be None)."
        )


def save(model, tokenizer, path):
    """Writes `model` (a GPT-2-shaped `TransformerLM`) and its
    `BytePairTokenizer` as a Hugging Face GPT-2 directory at `path`."""
    from keras_lm.generation.defaults import to_huggingface_generation_config
    from keras_lm.tokenizers.byte_pair import BytePairTokenizer

    check_fits(model)
    if not isinstance(tokenizer, BytePairTokenizer):
        raise ValueError(
            "A GPT-2 checkpoint needs a keras_lm BytePairTokenizer (vocab.json + "
            f"merges.txt). Received: {type(tokenizer).__name__}"
        )
    if tokenizer.vocabulary_size() != model.vocabulary_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocabulary_size()} tokens but the model's "
            f"vocabulary_size is {model.vocabulary_size}; they must match."
        )
    if tokenizer.special_ids != model.special_ids:
        raise ValueError(
            f"The tokenizer and the model disagree on special ids: tokenizer "
            f"{tokenizer.special_ids}, model {model.special_ids}."
        )
    special = model.special_ids
    d = model.hidden_dim
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": model.vocabulary_size,
        "n_positions": model.max_sequence_length,
        "n_embd": d,
        "n_layer": model.num_layers,
        "n_head": model.num_heads,
        "n_inner": model.intermediate_dim,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": model.layer_norm_epsilon,
        "resid_pdrop": model.dropout,
        "embd_pdrop": model.dropout,
        "attn_pdrop": model.dropout,
        "tie_word_embeddings": bool(model.tie_embeddings),
        "bos_token_id": special.bos_id,
        "eos_token_id": special.eos_id,
        "pad_token_id": special.pad_id,
    }
    write_json(config, path, "config.json")
    save_tensors(_tensors(model), path)
    generation = to_huggingface_generation_config(
        model.generation_config, model.max_sequence_length
    )
    generation.update({"bos_token_id": special.bos_id, "eos_token_id": special.eos_id})
    if special.pad_id is not None:
        generation["pad_token_id"] = special.pad_id
    write_json(generation, path, "generation_config.json")
    tokenizer.save_files(path)
    write_json(
        {
            "tokenizer_class": "GPT2Tokenizer",
            "model_max_length": model.max_sequence_length,
            "add_prefix_space": False,
        },
        path,
        "tokenizer_config.json",
    )
    return os.fspath(path)


def _tensors(model):
    def value(variable):
        return np.asarray(keras.ops.convert_to_numpy(variable))

    d = model.hidden_dim
    tensors = {
        "transformer.wte.weight": value(model.token_embedding.embeddings),
        "transformer.wpe.weight": value(model.position_layer.position_embeddings),
    }
    if not model.tie_embeddings:
        tensors["lm_head.weight"] = value(model.token_embedding.reverse_embeddings).T
    for i, block in enumerate(model.blocks):
        name = f"transformer.h.{i}."
        attention = block.self_attention
        dense_layers = (
            attention.query_dense,
            attention.key_dense,
            attention.value_dense,
        )
        tensors[name + "attn.c_attn.weight"] = np.concatenate(
            [value(dense.kernel).reshape(d, d) for dense in dense_layers], axis=1
        )
        tensors[name + "attn.c_attn.bias"] = np.concatenate(
            [value(dense.bias).reshape(d) for dense in dense_layers]
        )
        tensors[name + "attn.c_proj.weight"] = value(
            attention.output_dense.kernel
        ).reshape(d, d)
        tensors[name + "attn.c_proj.bias"] = value(attention.output_dense.bias)
        for norm, hf in ((block.self_attention_norm, "ln_1"), (block.ffn_norm, "ln_2")):
            tensors[name + hf + ".weight"] = value(norm.gamma)
            tensors[name + hf + ".bias"] = value(norm.beta)
        tensors[name + "mlp.c_fc.weight"] = value(block.ffn_intermediate.kernel)
        tensors[name + "mlp.c_fc.bias"] = value(block.ffn_intermediate.bias)
        tensors[name + "mlp.c_proj.weight"] = value(block.ffn_output.kernel)
        tensors[name + "mlp.c_proj.bias"] = value(block.ffn_output.bias)
    tensors["transformer.ln_f.weight"] = value(model.final_norm.gamma)
    tensors["transformer.ln_f.bias"] = value(model.final_norm.beta)
    return {k: v.astype("float32") for k, v in tensors.items()}
