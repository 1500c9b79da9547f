"""The `tf.Module`s behind exported signatures.

Notation: B batch, S source length, P prompt length, L output length.

Shapes inside are static except B: sources are padded to S, prompts to P, and
outputs use a buffer of L. With `jit_compile=True`, XLA compiles the decoding
loop once per batch size, at run time, in the process that loads the export;
TF1-style loaders (TensorFlow Serving, `saved_model_cli run`) cannot run XLA
functions that read restored variables, so that is off by default.
"""

import tensorflow as tf

from keras_lm.generation import build_decode_function
from keras_lm.tokenizers import SentencePieceTokenizer

TEXT = tf.TensorSpec([None], tf.string, name="text")
PROMPT = tf.TensorSpec([None], tf.string, name="prompt")


def _own_tokenizer(tokenizer):
    # Saving a SentencePiece resource invalidates the handle of the object it
    # was saved from; a copy keeps the caller's tokenizer usable afterwards.
    return SentencePieceTokenizer(tokenizer.proto, name="tokenizer")


def _tf_variables(model):
    # TF1-style loaders (saved_model_cli run, TensorFlow Serving) restore only
    # variables reachable as tf.Variables from the root, not through Keras'
    # variable wrappers (keras.export.ExportArchive does the same).
    return [variable.value for variable in model.variables]


def _pad_rows(ragged, width):
    """Ragged ids [B, None] -> (dense [B, width] padded with 0, lengths [B])."""
    dense = ragged.to_tensor(default_value=0, shape=[None, width])
    return tf.cast(dense, tf.int32), tf.cast(ragged.row_lengths(), tf.int32)


class TranslatorModule(tf.Module):
    """Strings in, translated strings out, with beam search (or greedy)."""

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
    ):
        super().__init__()
        self.model = model
        self.model_variables = _tf_variables(model)
        self.tokenizer = _own_tokenizer(tokenizer)
        self._source_length = int(max_source_length)
        self._output_length = int(model.max_sequence_length)
        self._num_beams = int(num_beams)
        self._length_penalty = float(length_penalty)
        self._ratio = float(source_length_ratio)
        self._offset = float(source_length_offset)
        method = "beam" if num_beams > 1 else "greedy"
        self._decode = tf.function(
            build_decode_function(
                model,
                method,
                num_beams,
                None,
                False,
                self._output_length,
                is_seq2seq=True,
            ),
            jit_compile=jit_compile,
            autograph=False,
        )

    def _source_ids(self, text):
        pieces = self.tokenizer.tokenize(text)[:, : self._source_length - 1]
        eos = tf.fill([pieces.nrows(), 1], tf.constant(self.tokenizer.eos_id, tf.int32))
        return _pad_rows(tf.concat([pieces, eos], axis=1), self._source_length)

    def _target_ids(self, text):
        ids, lengths = self._source_ids(text)
        new_tokens = tf.math.ceil(
            tf.cast(lengths, tf.float32) * self._ratio + self._offset
        )
        new_tokens = tf.minimum(tf.cast(new_tokens, tf.int32), self._output_length - 1)
        start = tf.ones_like(lengths)
        outputs = self._decode(
            ids,
            start,
            start + new_tokens,
            tf.constant(0, tf.uint32),
            tf.constant(1.0),
            tf.constant(1.0),
            tf.constant(self._length_penalty),
            tf.constant(self.tokenizer.eos_id, tf.int32),
            tf.constant(self.tokenizer.bos_id, tf.int32),
        )
        if self._num_beams > 1:
            outputs = outputs[0][:, 0]  # best beam, [B, L]
        return outputs

    @tf.function(input_signature=[TEXT])
    def translate(self, text):
        return {"translation": self.tokenizer.detokenize(self._target_ids(text))}

    @tf.function(input_signature=[TEXT])
    def translate_ids(self, text):
        return {"token_ids": self._target_ids(text)}


class GeneratorModule(tf.Module):
    """Prompt strings in, continuation strings out."""

    def __init__(
        self, model, tokenizer, max_new_tokens, max_prompt_length, top_k, jit_compile
    ):
        super().__init__()
        self.model = model
        self.model_variables = _tf_variables(model)
        self.tokenizer = _own_tokenizer(tokenizer)
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

    def _prompt_ids(self, prompt):
        # Documents were separated by EOS in training, so EOS is the natural
        # start of a new text; it also gives empty prompts one token.
        pieces = self.tokenizer.tokenize(prompt)
        keep = self._prompt_length - 1
        pieces = pieces[:, -keep:] if keep > 0 else pieces[:, :0]
        eos = tf.fill([pieces.nrows(), 1], tf.constant(self.tokenizer.eos_id, tf.int32))
        return _pad_rows(tf.concat([eos, pieces], axis=1), self._prompt_length)

    def _continue(self, decode, prompt, temperature, top_p, seed):
        ids, lengths = self._prompt_ids(prompt)
        tokens = decode(
            ids,
            lengths,
            lengths + self._new_tokens,
            tf.cast(seed, tf.uint32),
            tf.cast(temperature, tf.float32),
            tf.cast(top_p, tf.float32),
            tf.constant(0.0),
            tf.constant(self.tokenizer.eos_id, tf.int32),
            tf.constant(self.tokenizer.bos_id, tf.int32),
        )
        # Blank the prompt so only the continuation is detokenized.
        positions = tf.range(tf.shape(tokens)[1])[None, :]
        tokens = tf.where(positions < lengths[:, None], 0, tokens)
        return {"text": self.tokenizer.detokenize(tokens)}

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
