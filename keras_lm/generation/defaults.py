"""A model's own generation defaults, and reading them from Hugging Face.

A model may carry `generation_config`, a dict of `generate()` keyword
arguments (keras_lm's names) that `generate()` uses for every option its
caller does not pass. A converted checkpoint gets it from its
`generation_config.json` through `from_huggingface_generation_config`.
"""

import warnings

# The generate() options a model's generation_config may set.
OPTIONS = (
    "method",
    "max_new_tokens",
    "max_length",
    "num_beams",
    "length_penalty",
    "length_penalty_mode",
    "early_stopping",
    "top_k",
    "top_p",
    "temperature",
    "num_return_sequences",
    "suppress_ids",
    "forced_eos_id",
)


def check_generation_config(generation_config):
    """A copy of `generation_config` (a dict or None) with known keys only."""
    if generation_config is None:
        return None
    if not isinstance(generation_config, dict):
        raise TypeError(
            "generation_config must be a dict of generate() options or None. "
            f"Received: {type(generation_config).__name__}"
        )
    unknown = sorted(set(generation_config) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"Unknown generation_config keys {unknown}. Expected some of "
            f"{list(OPTIONS)}."
        )
    config = dict(generation_config)
    if config.get("suppress_ids") is not None:
        config["suppress_ids"] = [int(i) for i in config["suppress_ids"]]
    return config


def from_huggingface_generation_config(hf_config, vocabulary_size=None):
    """keras_lm `generate()` defaults from a `generation_config.json` dict.

    Beam search scores as transformers does (`length_penalty_mode="hf"`,
    alpha from `length_penalty`, default 1.0); sampling keeps transformers'
    default `top_k=50` (at most the vocabulary size) unless the file sets it.
    `bad_words_ids` of one token and `suppress_tokens` become `suppress_ids`;
    longer bad word sequences are not supported and are dropped with a
    warning. Special ids (`eos_token_id`, ...) are not generation options:
    the converters put them in the model's `special_ids`.
    """
    hf = dict(hf_config or {})
    config = {}
    num_beams = hf.get("num_beams") or 1
    do_sample = bool(hf.get("do_sample", False))
    if num_beams > 1:
        config["method"] = "beam"
        config["num_beams"] = int(num_beams)
        config["length_penalty"] = float(hf.get("length_penalty", 1.0))
        config["length_penalty_mode"] = "hf"
        early_stopping = hf.get("early_stopping", False)
        if early_stopping not in (True, False):
            raise ValueError(
                f"early_stopping={early_stopping!r} in generation_config.json is "
                "not supported; keras_lm follows transformers' True and False."
            )
        config["early_stopping"] = bool(early_stopping)
        if do_sample:
            warnings.warn(
                "generation_config.json asks for beam sampling (do_sample with "
                "num_beams > 1); keras_lm runs plain beam search.",
                stacklevel=2,
            )
    elif do_sample:
        config["method"] = "sample"
        top_k = hf.get("top_k", 50)
        if top_k and vocabulary_size is not None:
            top_k = min(int(top_k), vocabulary_size)
        config["top_k"] = int(top_k) if top_k else None
        top_p = hf.get("top_p", 1.0)
        config["top_p"] = None if top_p is None or top_p >= 1.0 else float(top_p)
        config["temperature"] = float(hf.get("temperature", 1.0) or 1.0)
    else:
        config["method"] = "greedy"
    if hf.get("max_new_tokens") is not None:
        config["max_new_tokens"] = int(hf["max_new_tokens"])
    elif hf.get("max_length") is not None:
        config["max_length"] = int(hf["max_length"])
    if (hf.get("num_return_sequences") or 1) > 1:
        config["num_return_sequences"] = int(hf["num_return_sequences"])
    suppress = [int(i) for i in hf.get("suppress_tokens") or []]
    for words in hf.get("bad_words_ids") or []:
        if len(words) == 1:
            suppress.append(int(words[0]))
        else:
            warnings.warn(
                f"bad_words_ids entry {words} has more than one token; keras_lm "
                "suppresses single ids only and ignores it.",
                stacklevel=2,
            )
    if suppress:
        config["suppress_ids"] = sorted(set(suppress))
    forced = hf.get("forced_eos_token_id")
    if isinstance(forced, (list, tuple)):
        if len(forced) > 1:
            raise ValueError(
                f"forced_eos_token_id={forced} lists several ids; keras_lm forces one."
            )
        forced = forced[0] if forced else None
    if forced is not None:
        config["forced_eos_id"] = int(forced)
    return config


def to_huggingface_generation_config(config, max_sequence_length=None):
    """The `generation_config.json` fields for keras_lm `generate()` defaults.

    The reverse of `from_huggingface_generation_config`. keras_lm's GNMT beam
    scoring has no transformers equivalent: a model whose beam search uses it
    is written with transformers' scoring and the same alpha.
    """
    config = dict(config or {})
    hf = {}
    method = config.get("method", "greedy")
    if method == "beam":
        hf["num_beams"] = int(config.get("num_beams", 4))
        hf["length_penalty"] = float(config.get("length_penalty", 0.6))
        hf["early_stopping"] = bool(config.get("early_stopping", False))
    elif method == "sample":
        hf["do_sample"] = True
        hf["top_k"] = config.get("top_k") or 0
        if config.get("top_p") is not None:
            hf["top_p"] = float(config["top_p"])
        hf["temperature"] = float(config.get("temperature", 1.0))
    if config.get("max_new_tokens") is not None:
        hf["max_new_tokens"] = int(config["max_new_tokens"])
    elif config.get("max_length") is not None:
        hf["max_length"] = int(config["max_length"])
    elif max_sequence_length is not None:
        hf["max_length"] = int(max_sequence_length)
    if (config.get("num_return_sequences") or 1) > 1:
        hf["num_return_sequences"] = int(config["num_return_sequences"])
    if config.get("suppress_ids"):
        hf["bad_words_ids"] = [[int(i)] for i in config["suppress_ids"]]
    if config.get("forced_eos_id") is not None:
        hf["forced_eos_token_id"] = int(config["forced_eos_id"])
    return hf
