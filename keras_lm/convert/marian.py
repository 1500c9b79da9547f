"""Marian (OPUS-MT) checkpoints -> `TransformerSeq2Seq` + `MarianTokenizer`.

Marian is a post-norm encoder-decoder (no final norms), eps 1e-5, with
swish (SiLU) feed-forward layers, token embeddings scaled by sqrt(D),
sinusoids with the sines in the first half of the features, a trained
`final_logits_bias`, and pad = decoder start = the last id, EOS 0.

Notation: D width, N heads, H head size, F feed-forward width, V vocabulary.
"""

import numpy as np

from keras_lm.generation.defaults import from_huggingface_generation_config
from keras_lm.special_ids import SpecialIds

# transformers' activation names -> keras_lm's; "gelu" there is the exact
# (erf) GELU, which keras_lm's tanh approximation is not.
ACTIVATIONS = {
    "swish": "silu",
    "silu": "silu",
    "relu": "relu",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
}


def load(checkpoint):
    """`(TransformerSeq2Seq, MarianTokenizer)` from a `HuggingFaceCheckpoint`."""
    from keras_lm.models import TransformerSeq2Seq
    from keras_lm.tokenizers.marian import MarianTokenizer

    config = checkpoint.config
    options = model_options(config, checkpoint.path)
    options["share_embeddings"] = share_embeddings(checkpoint, options)
    special_ids = SpecialIds(
        pad_id=config["pad_token_id"],
        unk_id=None,
        bos_id=None,
        eos_id=single_id(config.get("eos_token_id", 0), "eos_token_id"),
        decoder_start_id=config.get("decoder_start_token_id", config["pad_token_id"]),
    )
    tokenizer = MarianTokenizer.from_directory(
        checkpoint.path, decoder_start_id=special_ids.decoder_start_id
    )
    special_ids = SpecialIds(
        **dict(special_ids.get_config(), unk_id=tokenizer.special_ids.unk_id)
    )
    model = TransformerSeq2Seq(
        **options,
        special_ids=special_ids,
        generation_config=from_huggingface_generation_config(
            checkpoint.generation_config, options["vocabulary_size"]
        ),
    )
    set_weights(model, checkpoint)
    check_tokenizer(tokenizer, options["vocabulary_size"], special_ids, checkpoint.path)
    return model, tokenizer


def model_options(config, where, normalize_first=False):
    """`TransformerSeq2Seq` keyword arguments for a Marian `config.json` (or
    a Pegasus one, with `normalize_first=True`)."""
    vocabulary_size = config["vocab_size"]
    decoder_vocabulary_size = config.get("decoder_vocab_size") or vocabulary_size
    if decoder_vocabulary_size != vocabulary_size:
        raise ValueError(
            f"{where}: decoder_vocab_size={decoder_vocabulary_size} differs from "
            f"vocab_size={vocabulary_size}; keras_lm's TransformerSeq2Seq has one "
            "vocabulary size for source and target."
        )
    _same(config, "encoder_attention_heads", "decoder_attention_heads", where)
    _same(config, "encoder_ffn_dim", "decoder_ffn_dim", where)
    activation = config.get("activation_function", "swish")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"{where}: activation_function={activation!r} is not supported; "
            f"supported: {sorted(ACTIVATIONS)}."
        )
    return dict(
        vocabulary_size=vocabulary_size,
        num_encoder_layers=config["encoder_layers"],
        num_decoder_layers=config["decoder_layers"],
        num_heads=config["encoder_attention_heads"],
        hidden_dim=config["d_model"],
        intermediate_dim=config["encoder_ffn_dim"],
        max_sequence_length=config.get("max_position_embeddings", 512),
        dropout=config.get("dropout", 0.1),
        activation=ACTIVATIONS[activation],
        normalize_first=normalize_first,
        position_encoding="sinusoidal",
        tie_embeddings=config.get("tie_word_embeddings", True),
        layer_norm_epsilon=1e-5,
        scale_embeddings=config.get("scale_embedding", False),
        sinusoid_layout="concat",
        share_embeddings=config.get("share_encoder_decoder_embeddings", True),
        logit_bias=True,
    )


def check_tokenizer(tokenizer, vocabulary_size, special_ids, where):
    """The tokenizer's vocabulary and special ids must be the weights'."""
    size = tokenizer.vocabulary_size()
    if size != vocabulary_size:
        raise ValueError(
            f"{where}: vocab.json has {size} entries but the weights have "
            f"vocab_size={vocabulary_size} rows; the tokenizer files do not "
            "belong to this model."
        )
    ours, theirs = tokenizer.special_ids, special_ids
    for name in ("pad_id", "eos_id"):
        if getattr(ours, name) != getattr(theirs, name):
            raise ValueError(
                f"{where}: the tokenizer's {name}={getattr(ours, name)} differs "
                f"from config.json's {getattr(theirs, name)}."
            )


def embedding_tables(checkpoint, vocabulary_size, width):
    """(encoder table, decoder table), each [V, D].

    Each stack's own `embed_tokens` when the file has it, else
    `model.shared`: transformers 5 ties a stack's table to `model.shared`
    only when `tie_word_embeddings` is set, and then saves `model.shared`
    alone.
    """
    shape = (vocabulary_size, width)
    tables = []
    for stack in ("encoder", "decoder"):
        name = f"model.{stack}.embed_tokens.weight"
        tables.append(checkpoint.tensor(name, shape, "model.shared.weight"))
    return tuple(tables)


def share_embeddings(checkpoint, options):
    """Whether one table serves both stacks: as the config says, unless the
    file holds two different tables."""
    source, target = embedding_tables(
        checkpoint, options["vocabulary_size"], options["hidden_dim"]
    )
    return options["share_embeddings"] and np.array_equal(source, target)


def set_weights(model, checkpoint):
    """Copy a Marian (or Pegasus) checkpoint's tensors into `model`."""
    d, v = model.hidden_dim, model.vocabulary_size
    tensor = checkpoint.tensor
    source_table, target_table = embedding_tables(checkpoint, v, d)
    _assign(model.token_embedding.embeddings, target_table)
    if not model.share_embeddings:
        _assign(model.source_token_embedding.embeddings, source_table)
    if not model.tie_embeddings:
        _assign(
            model.token_embedding.reverse_embeddings,
            tensor("lm_head.weight", (v, d)).T,
        )
    if model.logit_bias_layer is not None:
        _assign(model.logit_bias_layer.bias, tensor("final_logits_bias", (1, v))[0])
    for stack, blocks in (
        ("encoder", model.encoder_blocks),
        ("decoder", model.decoder_blocks),
    ):
        for i, block in enumerate(blocks):
            prefix = f"model.{stack}.layers.{i}."
            sublayers = [
                (
                    "self_attn",
                    block.self_attention,
                    "self_attn_layer_norm",
                    block.self_attention_norm,
                ),
            ]
            if stack == "decoder":
                sublayers.append(
                    (
                        "encoder_attn",
                        block.cross_attention,
                        "encoder_attn_layer_norm",
                        block.cross_attention_norm,
                    )
                )
            for name, attention, norm_name, norm in sublayers:
                set_attention(attention, checkpoint, prefix + name, d)
                set_norm(norm, checkpoint, prefix + norm_name, d)
            set_feed_forward(block, checkpoint, prefix + "fc1", prefix + "fc2", d)
            set_norm(block.ffn_norm, checkpoint, prefix + "final_layer_norm", d)
    # Pre-norm stacks (Pegasus) end with a norm each; Marian's have none.
    for stack, norm in (
        ("encoder", model.encoder_norm),
        ("decoder", model.decoder_norm),
    ):
        if norm is not None:
            set_norm(norm, checkpoint, f"model.{stack}.layer_norm", d)


def set_attention(attention, checkpoint, prefix, width):
    """q/k/v/out projections ([out, in] torch layout) into EinsumDense kernels."""
    n, h = attention.num_heads, attention.key_dim
    for name, dense in (
        ("q_proj", attention.query_dense),
        ("k_proj", attention.key_dense),
        ("v_proj", attention.value_dense),
    ):
        weight = checkpoint.tensor(f"{prefix}.{name}.weight", (n * h, width))
        _assign(dense.kernel, weight.T.reshape(width, n, h))  # [D, N, H]
        bias = checkpoint.tensor(f"{prefix}.{name}.bias", (n * h,))
        _assign(dense.bias, bias.reshape(n, h))
    weight = checkpoint.tensor(f"{prefix}.out_proj.weight", (width, n * h))
    _assign(attention.output_dense.kernel, weight.T.reshape(n, h, width))  # [N, H, D]
    _assign(
        attention.output_dense.bias,
        checkpoint.tensor(f"{prefix}.out_proj.bias", (width,)),
    )


def set_feed_forward(block, checkpoint, first, second, width):
    f = block.intermediate_dim
    _assign(
        block.ffn_intermediate.kernel,
        checkpoint.tensor(f"{first}.weight", (f, width)).T,
    )
    _assign(block.ffn_intermediate.bias, checkpoint.tensor(f"{first}.bias", (f,)))
    _assign(
        block.ffn_output.kernel, checkpoint.tensor(f"{second}.weight", (width, f)).T
    )
    _assign(block.ffn_output.bias, checkpoint.tensor(f"{second}.bias", (width,)))


def set_norm(norm, checkpoint, prefix, width):
    _assign(norm.gamma, checkpoint.tensor(f"{prefix}.weight", (width,)))
    _assign(norm.beta, checkpoint.tensor(f"{prefix}.bias", (width,)))


def _assign(variable, value):
    value = np.asarray(value, "float32")
    if tuple(variable.shape) != value.shape:
        raise ValueError(
            f"Cannot load a tensor of shape {value.shape} into {variable.path} of "
            f"shape {tuple(variable.shape)}."
        )
    variable.assign(value)


def _same(config, first, second, where):
    if first in config and second in config and config[first] != config[second]:
        raise ValueError(
            f"{where}: {first}={config[first]} differs from {second}="
            f"{config[second]}; keras_lm's TransformerSeq2Seq uses one value "
            "for encoder and decoder."
        )


def single_id(value, name):
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"{name}={value}: keras_lm supports one id.")
        return value[0]
    return value
