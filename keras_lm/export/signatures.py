"""The `tf.Module`s behind exported signatures.

Notation: B batch, S source length, P prompt length, L output length.

A translator decodes each request in length-sorted chunks (`batching.py`),
each padded to its own source width with an output buffer sized from it.
Prompts are padded to P and generators use a buffer of L. XLA, where used,
compiles the decoding loop once per shape at run time, in the process that
runs the export. With TensorFlow 2.21 both `tf.saved_model.load` and TF1
sessions (`saved_model_cli run`) run the XLA functions over the restored
variables (tests/export/test_export_compiled.py); TensorFlow Serving runs
XLA on CPU only with `--xla_cpu_compilation_enabled`, so `serving_default`
stays a plain graph unless `jit_compile=True`.
"""

import tensorflow as tf

from keras_lm.export import batching
from keras_lm.generation import (
    build_decode_function,
    check_same_special_ids,
    decode_inputs,
)
from keras_lm.tokenizers.encoding import encode_prompts, encode_sources

TEXT = tf.TensorSpec([None], tf.string, name="text")
PROMPT = tf.TensorSpec([None], tf.string, name="prompt")


def _own_tokenizer(tokenizer):
    # Saving a SentencePiece resource invalidates the handle of the object it
    # was saved from; a copy keeps the caller's tokenizer usable afterwards.
    # Any tokenizer layer with a complete config copies the same way.
    return type(tokenizer).from_config(dict(tokenizer.get_config(), name="tokenizer"))


def _tf_variables(model):
    # TF1-style loaders (saved_model_cli run, TensorFlow Serving) restore only
    # variables reachable as tf.Variables from the root, not through Keras'
    # variable wrappers (keras.export.ExportArchive does the same).
    return [variable.value for variable in model.variables]


def _pad_rows(ragged, width, pad_id):
    """Ragged ids [B, None] -> (dense [B, width] right-padded, lengths [B])."""
    dense = ragged.to_tensor(default_value=pad_id, shape=[None, width])
    return tf.cast(dense, tf.int32), tf.cast(ragged.row_lengths(), tf.int32)


class TranslatorModule(tf.Module):
    """Strings in, translated strings out, with beam search (or greedy).

    Every signature decodes through `batching.ChunkedDecoder` (length-sorted
    chunks). `translate` / `translate_ids` run the decoding loop as a plain
    graph, or with XLA when `jit_compile`; `translate_xla` / `translate_xla_ids`
    always compile it with XLA.
    """

    def __init__(
        self,
        model,
        tokenizer,
        num_beams,
        length_penalty,
        max_source_length,
        source_length_ratio,
        source_length_offset,
        jit_compile,
        batch_size=32,
        width_multiple=16,
    ):
        super().__init__()
        # Only the weights are saved: tracking the Keras model itself would
        # also save its optimizer's state (twice the weights with Adam).
        self.model_variables = _tf_variables(model)
        self.tokenizer = _own_tokenizer(tokenizer)
        self._special_ids = check_same_special_ids(tokenizer, model)
        self._source_length = int(max_source_length)
        self._output_length = int(model.max_sequence_length)
        self._num_beams = int(num_beams)
        method = "beam" if num_beams > 1 else "greedy"

        def decode_builder(length):
            return build_decode_function(
                model, method, num_beams, None, False, length, is_seq2seq=True
            )

        chunk = batching.build_chunk_function(
            decode_builder,
            self._special_ids,
            float(source_length_ratio),
            float(source_length_offset),
            self._output_length,
            float(length_penalty),
            self._num_beams,
        )

        def chunked(xla):
            return batching.ChunkedDecoder(
                tf.function(chunk, jit_compile=xla, autograph=False),
                self._special_ids,
                self._output_length,
                batch_size,
                width_multiple,
                self._source_length,
            )

        self._decode = chunked(jit_compile)
        self._decode_xla = chunked(True)

    def _target_ids(self, text, decode):
        sources = encode_sources(
            self.tokenizer.tokenize(text), self._special_ids, self._source_length
        )
        return decode(sources)

    @tf.function(input_signature=[TEXT])
    def translate(self, text):
        ids = self._target_ids(text, self._decode)
        return {"translation": self.tokenizer.detokenize(ids)}

    @tf.function(input_signature=[TEXT])
    def translate_ids(self, text):
        return {"token_ids": self._target_ids(text, self._decode)}

    @tf.function(input_signature=[TEXT])
    def translate_xla(self, text):
        ids = self._target_ids(text, self._decode_xla)
        return {"translation": self.tokenizer.detokenize(ids)}

    @tf.function(input_signature=[TEXT])
    def translate_xla_ids(self, text):
        return {"token_ids": self._target_ids(text, self._decode_xla)}


class GeneratorModule(tf.Module):
    """Prompt strings in, continuation strings out."""

    def __init__(
        self, model, tokenizer, max_new_tokens, max_prompt_length, top_k, jit_compile
    ):
        super().__init__()
        # Only the weights are saved: tracking the Keras model itself would
        # also save its optimizer's state (twice the weights with Adam).
        self.model_variables = _tf_variables(model)
        self.tokenizer = _own_tokenizer(tokenizer)
        self._special_ids = check_same_special_ids(tokenizer, model)
        self._prompt_length = int(max_prompt_length)
        self._output_length = int(max_prompt_length + max_new_tokens)
        self._new_tokens = int(max_new_tokens)

        def compiled(method):
            return tf.function(
                build_decode_function(
                    model,
                    method,
                    1,
                    top_k if method == "sample" else None,
                    method == "sample",
                    self._output_length,
                    is_seq2seq=False,
                ),
                jit_compile=jit_compile,
                autograph=False,
            )

        self._sample = compiled("sample")
        self._greedy = compiled("greedy")

    def _continue(self, decode, prompt, temperature, top_p, seed):
        # The start-of-text id leads every prompt (as in training), which
        # also gives an empty prompt one token; long prompts keep their end.
        prompts = encode_prompts(
            self.tokenizer.tokenize(prompt), self._special_ids, self._prompt_length
        )
        ids, lengths = _pad_rows(
            prompts, self._prompt_length, self._special_ids.fill_id
        )
        tokens = decode(
            decode_inputs(
                ids,
                lengths,
                lengths + self._new_tokens,
                self._special_ids,
                seed=seed,
                temperature=temperature,
                top_p=top_p,
            )
        )
        # Drop the prompt so only the continuation is detokenized.
        positions = tf.range(tf.shape(tokens)[1])[None, :]
        keep = positions >= lengths[:, None]
        continuation = tf.ragged.boolean_mask(tokens, keep)
        return {
            "text": self.tokenizer.detokenize(continuation),
            "token_ids": tokens,
        }

    @tf.function(input_signature=[PROMPT])
    def generate(self, prompt):
        return self._continue(self._sample, prompt, 1.0, 0.9, 0)

    @tf.function(
        input_signature=[
            PROMPT,
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.float32, name="top_p"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ]
    )
    def sample(self, prompt, temperature, top_p, seed):
        return self._continue(self._sample, prompt, temperature, top_p, seed)

    @tf.function(input_signature=[PROMPT])
    def greedy(self, prompt):
        return self._continue(self._greedy, prompt, 1.0, 1.0, 0)
