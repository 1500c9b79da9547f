"""Post-training int8 quantization of keras_lm models, kept through `.keras`
files and SavedModel exports.

Both modes store every projection kernel (attention, feed-forward) and the
token embedding table (also the tied output projection) as int8 with one
float32 scale per output channel (per row for the embedding), through Keras'
own `quantize()`; norms, biases and position encodings stay float.

- "int8": Keras' default. Activations are also quantized to int8, per token
  and on the fly, and the products run on int8 operands.
- "int8_weight_only": only the weights are int8; activations stay float and
  each product runs on the dequantized kernel: as small on disk, no faster.

On the translation example's `small` model (BENCHMARKS.md, "Compression"),
"int8" was 3.8x smaller, 1.22x the float32 tokens per CPU second and +0.0
BLEU; "int8_weight_only" 1.06x and -0.2 BLEU.
"""

import warnings

import keras

MODES = ("int8", "int8_weight_only")


def quantize_modes():
    """The modes `quantize` accepts."""
    return MODES


def quantize(model, mode="int8"):
    """Quantize a built keras_lm model in place and return it.

    The model keeps its class and interface (`generate`, `translate_texts`,
    `keras_lm.export.export_translator` / `export_generator`), and its
    `.keras` file loads back quantized. Quantized weights are frozen
    (Keras' int8 kernels are not trainable): prune or fine-tune first.

    Args:
        model: a `keras_lm.models.TransformerSeq2Seq` or `TransformerLM`,
            not already quantized.
        mode: "int8" (int8 weights and activations) or "int8_weight_only".

    Returns:
        `model`.

    Example:
    >>> keras_lm.compression.quantize(model, "int8_weight_only")
    >>> model.save("model_int8.keras")
    """
    if mode not in MODES:
        raise ValueError(
            f"mode must be one of {list(MODES)}. Received: mode={mode!r}. "
            "(float8 and int4 are Keras modes keras_lm does not measure or "
            "export; call model.quantize() directly to try them.)"
        )
    if not hasattr(model, "special_ids") or not hasattr(model, "get_config"):
        raise ValueError(
            "quantize expects a keras_lm model (TransformerSeq2Seq or "
            f"TransformerLM). Received: {type(model).__name__}"
        )
    if not model.built:
        raise ValueError("Build the model (call it once) before quantizing it.")
    already = quantized_layers(model)
    if already:
        raise ValueError(
            f"The model is already quantized ({len(already)} layers, e.g. "
            f"{already[0]!r}). Quantize the float model once."
        )
    with warnings.catch_warnings():
        # Keras warns for every layer without weights to quantize (norms,
        # dropout, position encodings); that is expected here.
        warnings.filterwarnings("ignore", "Layer .* does not have a `quantize`")
        if mode == "int8_weight_only":
            config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
            model.quantize(config=config)
        else:
            model.quantize("int8")
    return model


def quantized_layers(model):
    """Paths of the model's quantized layers."""
    return [
        layer.path
        for layer in model._flatten_layers(include_self=False)
        if layer.quantization_mode is not None
    ]


def weight_only_layers(model):
    """Paths of int8 layers whose activations stay float (weight-only)."""
    return [
        layer.path
        for layer in model._flatten_layers(include_self=False)
        if layer.quantization_mode == "int8"
        and getattr(layer, "inputs_quantizer", "missing") is None
    ]


def quantization_config(model):
    """The entries a quantized model adds to its `get_config()`, else {}.

    `dtype` maps each quantized layer's path to its policy (as keras-hub's
    backbones do): the model's constructor passes it to every layer, which
    then builds int8 variables that the saved weights load into.
    Weight-only layers are listed too, since a layer's policy does not say
    whether its activations are quantized.
    """
    paths = quantized_layers(model)
    if not paths:
        return {}
    policy_map = keras.dtype_policies.DTypePolicyMap(
        default_policy=_own_policy(model).name
    )
    for layer in model._flatten_layers(include_self=False):
        if layer.quantization_mode is not None:
            policy_map[layer.path] = _own_policy(layer)
    config = {"dtype": keras.dtype_policies.serialize(policy_map)}
    weight_only = weight_only_layers(model)
    if weight_only:
        config["int8_weight_only_layers"] = weight_only
    return config


def _own_policy(layer):
    """A layer's policy; a model loaded quantized hands every layer the map."""
    policy = layer.dtype_policy
    if isinstance(policy, keras.dtype_policies.DTypePolicyMap):
        return policy[layer.path] if layer.path else policy.default_policy
    return policy


def finish_loading(model, weight_only_paths=None):
    """Complete a quantized model built from its config.

    Every layer got the policy map; each now keeps only its own policy,
    because parts of Keras 3.15 (the quantized embedding's saving) read
    `layer.dtype_policy` rather than the path lookup and would see the map's
    float default. Layers listed as weight-only stop quantizing activations.
    """
    for layer in [model, *model._flatten_layers(include_self=False)]:
        layer._dtype_policy = _own_policy(layer)
    if weight_only_paths:
        _restore_weight_only(model, weight_only_paths)


def _restore_weight_only(model, paths):
    layers = {layer.path: layer for layer in model._flatten_layers(include_self=False)}
    missing = [path for path in paths if path not in layers]
    if missing:
        raise ValueError(
            f"The config lists int8 weight-only layers {missing} that this "
            "model does not have."
        )
    config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)
    for path in paths:
        layers[path].inputs_quantizer = None
        layers[path].quantization_config = config
