"""What both models share: their config, input checks, special ids, `generate`."""

import inspect

import keras

from keras_lm.models import common
from keras_lm.special_ids import SpecialIds


class TransformerModel(keras.Model):
    """Base of `TransformerLM` and `TransformerSeq2Seq`.

    A subclass builds its functional graph, calls `super().__init__(inputs=...,
    outputs=...)`, then `_remember_config(locals())`: the arguments of its
    `__init__` become attributes and, with the base fields and `special_ids`,
    `get_config()`.
    """

    INPUT_NAMES = ()

    def _remember_config(self, arguments):
        parameters = inspect.signature(type(self).__init__).parameters
        skip = {"self", "kwargs", "special_ids"}
        self._config_names = tuple(name for name in parameters if name not in skip)
        self._special_ids = arguments["special_ids"]
        for name in self._config_names:
            setattr(self, name, arguments[name])

    @property
    def special_ids(self):
        """The vocabulary's `keras_lm.SpecialIds` (also in `get_config()`)."""
        return self._special_ids

    def __call__(self, inputs, *args, **kwargs):
        inputs = common.check_token_inputs(
            inputs, self.INPUT_NAMES, self.max_sequence_length, self.vocabulary_size
        )
        return super().__call__(inputs, *args, **kwargs)

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
        }
        config.update({name: getattr(self, name) for name in self._config_names})
        config["special_ids"] = self.special_ids.get_config()
        # A quantized model (keras_lm.compression.quantize) rebuilds its
        # layers int8 from a per-layer policy map.
        from keras_lm.compression.quantize import quantization_config

        config.update(quantization_config(self))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        weight_only = config.pop("int8_weight_only_layers", None)
        dtype = config.get("dtype")
        quantized = isinstance(dtype, dict) and dtype.get("class_name") == (
            "DTypePolicyMap"
        )
        if not quantized:
            return cls(**config)
        config["dtype"] = keras.dtype_policies.deserialize(dtype)
        model = cls(**config)
        from keras_lm.compression.quantize import finish_loading

        finish_loading(model, weight_only)
        return model

    def output_kernel(self):
        """The tied output projection [D, V] for `decode_step`, or None.

        Decoding computes it once, outside its loop (see
        `common.output_kernel`).
        """
        return common.output_kernel(self.token_embedding)

    def resize_cache(self, cache, max_length):
        """`empty_cache`'s cache with room for `max_length` positions (grown
        or cut), for decoding's growth stages (see `common.resize_cache`)."""
        return common.resize_cache(cache, max_length)

    def generate(self, token_ids, **options):
        """Decode from this model; see `keras_lm.generation.generate`.

        Example:
        >>> model.generate(token_ids, max_new_tokens=8, method="beam")
        """
        from keras_lm.generation import generate

        return generate(self, token_ids, **options)


def special_ids_for(special_ids, vocabulary_size, needs=()):
    """Check and return the `SpecialIds` a model is built with."""
    return SpecialIds.from_value(special_ids).check(vocabulary_size, needs=needs)
