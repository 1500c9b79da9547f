"""GPT-2's byte-level byte-pair encoding in the TensorFlow graph.

Shapes: B texts, W words (pre-tokens) in the batch, C symbols per word.

Text is split into words by GPT-2's pattern, each word's UTF-8 bytes become
printable symbols (GPT-2's byte-to-unicode table), and adjacent symbols are
merged by the ranked `merges` until no ranked pair is left: each step merges,
in every word, the lowest-ranked pair, the leftmost one on ties, as the
`tokenizers` library (transformers' `GPT2Tokenizer`) does.
"""

import json
import os
import re

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from keras_lm.special_ids import SpecialIds
from keras_lm.tokenizers.byte_level import bytes_to_unicode, split_words

END_OF_TEXT = "<|endoftext|>"

_NO_RANK = np.iinfo(np.int32).max


@keras.saving.register_keras_serializable(package="keras_lm")
class BytePairTokenizer(keras.layers.Layer):
    """Strings to int32 ids and back with GPT-2's byte-level BPE, in graph.

    Gives the ids and the decoded text of transformers' `GPT2Tokenizer` for the
    same `vocab.json` and `merges.txt`, as TensorFlow ops, so it runs in
    `tf.data` and inside an exported SavedModel (its lookup tables are tracked
    by the layer).

    Args:
        vocabulary: dict token -> id, or the path of a `vocab.json`.
        merges: list of "left right" rules, best first, or the path of a
            `merges.txt` (its "#version" line is skipped).
        special_ids: the vocabulary's `keras_lm.SpecialIds` (or its dict).
            Defaults to GPT-2's: no padding, and "<|endoftext|>" as unknown,
            BOS and EOS.
        special_tokens: token strings that map to their id wherever they
            appear in a text. Defaults to the special ids' tokens written like
            "<...>" (GPT-2's "<|endoftext|>").
        **kwargs: base layer arguments.

    Call arguments:
        inputs: a `tf.string` scalar or [B] tensor (or a list of `str`).

    Returns:
        int32 ids [T] for a scalar, a ragged [B, None] for a batch; no special
        ids are added.

    Example:
    >>> tokenizer = BytePairTokenizer("gpt2/vocab.json", "gpt2/merges.txt")
    >>> tokenizer.detokenize(tokenizer(["Hello world"]))  # [b"Hello world"]
    """

    def __init__(
        self, vocabulary, merges, special_ids=None, special_tokens=None, **kwargs
    ):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self._vocabulary = _read_vocabulary(vocabulary)
        self._merges = _read_merges(merges)
        self._check_merges()
        self._tokens = [None] * (max(self._vocabulary.values()) + 1)
        for token, index in self._vocabulary.items():
            self._tokens[index] = token
        missing = [i for i, token in enumerate(self._tokens) if token is None]
        if missing:
            raise ValueError(
                f"The vocabulary's ids must be 0 ... {len(self._tokens) - 1} "
                f"without gaps; {len(missing)} are missing, e.g. {missing[:5]}."
            )
        if special_ids is None:
            end = self._vocabulary.get(END_OF_TEXT)
            special_ids = SpecialIds(pad_id=None, unk_id=end, bos_id=end, eos_id=end)
        self.special_ids = SpecialIds.from_value(special_ids).check(len(self._tokens))
        if special_tokens is None:
            special_tokens = sorted(
                {
                    self._tokens[i]
                    for i in (self.special_ids.get_config().values())
                    if i is not None and _looks_special(self._tokens[i])
                }
            )
        unknown = [t for t in special_tokens if t not in self._vocabulary]
        if unknown:
            raise ValueError(f"special_tokens {unknown} are not in the vocabulary.")
        # Longest first, so that a token containing another one wins.
        self._special_tokens = sorted(special_tokens, key=len, reverse=True)
        self._byte_table = bytes_to_unicode()
        self._build_tables()
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def _check_merges(self):
        for rule in self._merges:
            parts = rule.split(" ")
            if len(parts) != 2 or any(p not in self._vocabulary for p in parts):
                raise ValueError(
                    f"Merge rule {rule!r} must be two vocabulary tokens separated "
                    "by one space."
                )

    def _build_tables(self):
        def table(keys, values, default):
            return tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(keys, tf.string), tf.constant(values, tf.int32)
                ),
                default_value=default,
            )

        # Tables assigned as attributes are tracked, so they export.
        self._rank_table = table(self._merges, list(range(len(self._merges))), _NO_RANK)
        unknown = -1 if self.special_ids.unk_id is None else self.special_ids.unk_id
        self._id_table = table(self._tokens, list(range(len(self._tokens))), unknown)

    def vocabulary_size(self):
        return len(self._tokens)

    def get_vocabulary(self):
        return list(self._tokens)

    @property
    def merges(self):
        return list(self._merges)

    def id_to_token(self, token_id):
        if not 0 <= token_id < len(self._tokens):
            raise ValueError(
                f"token_id must be in [0, {len(self._tokens)}). "
                f"Received: token_id={token_id}"
            )
        return self._tokens[token_id]

    def token_to_id(self, token):
        if token not in self._vocabulary:
            raise ValueError(
                f"token {token!r} is not in the vocabulary. Tokens are byte "
                "symbols: a leading space is 'Ġ', e.g. 'Ġworld'."
            )
        return self._vocabulary[token]

    def call(self, inputs):
        return self.tokenize(inputs)

    def tokenize(self, inputs):
        """Strings to int32 ids: `[]` -> `[T]`, `[B]` -> ragged `[B, None]`.

        A special token written in the text (e.g. "<|endoftext|>") becomes
        its id; the text around it is encoded on its own, as transformers
        does.
        """
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        single = inputs.shape.rank == 0
        texts = inputs[tf.newaxis] if single else inputs
        if not self._special_tokens:
            ids = self._encode(texts)
            return ids[0] if single else ids
        pattern = "|".join(re.escape(token) for token in self._special_tokens)
        pieces = tf_text.regex_split(texts, pattern, pattern)  # [B, pieces]
        flat = pieces.flat_values
        special = tf.fill(tf.shape(flat), -1)
        for token in self._special_tokens:
            special = tf.where(tf.equal(flat, token), self._vocabulary[token], special)
        is_special = special >= 0
        plain = self._encode(tf.where(is_special, "", flat))  # [pieces, None]
        ids = tf.concat(
            [plain, tf.ragged.boolean_mask(special[:, None], is_special[:, None])],
            axis=1,
        )
        ids = tf.RaggedTensor.from_row_splits(ids, pieces.row_splits)
        ids = ids.merge_dims(1, 2)  # [B, T]
        return ids[0] if single else ids

    def _encode(self, texts):
        """[B] plain texts -> ragged [B, None] ids."""
        words = split_words(texts)  # [B, W]
        symbols = self._merge(self._to_symbols(words.flat_values))  # [W, C]
        ids = self._id_table.lookup(symbols)
        ids = tf.ragged.boolean_mask(ids, tf.not_equal(symbols, ""))  # [W, None]
        ids = tf.RaggedTensor.from_row_splits(ids, words.row_splits)
        ids = ids.merge_dims(1, 2)  # [B, T]
        return tf.ragged.boolean_mask(ids, ids >= 0)

    def _to_symbols(self, words):
        """[W] words -> [W, C] byte symbols, "" after each word's end."""
        pieces = tf.strings.bytes_split(words)  # [W, None] one-byte strings
        values = tf.io.decode_raw(pieces.flat_values, tf.uint8)[:, 0]
        table = tf.constant([self._byte_table[b] for b in range(256)])
        symbols = pieces.with_flat_values(tf.gather(table, tf.cast(values, "int32")))
        return symbols.to_tensor("")

    def _merge(self, symbols):
        """Merge the best-ranked adjacent pair of every word until none is left."""

        def ranks(symbols):
            left, right = symbols[:, :-1], symbols[:, 1:]
            pairs = tf.strings.join([left, right], separator=" ")
            rank = self._rank_table.lookup(pairs)
            real = tf.logical_and(tf.not_equal(left, ""), tf.not_equal(right, ""))
            return tf.where(real, rank, _NO_RANK)  # [W, C - 1]

        def keep_going(symbols):
            rank = ranks(symbols)
            return tf.logical_and(tf.shape(rank)[1] > 0, tf.reduce_any(rank < _NO_RANK))

        def one_merge(symbols):
            rank = ranks(symbols)
            best = tf.argmin(rank, axis=1, output_type=tf.int32)  # leftmost min
            merging = tf.reduce_min(rank, axis=1) < _NO_RANK  # [W]
            width = tf.shape(symbols)[1]
            column = tf.range(width)[tf.newaxis, :]
            at_left = tf.logical_and(merging[:, None], column == best[:, None])
            at_right = tf.logical_and(merging[:, None], column == best[:, None] + 1)
            following = tf.concat([symbols[:, 1:], symbols[:, :1]], axis=1)
            merged = tf.where(at_left, tf.strings.join([symbols, following]), symbols)
            merged = tf.where(at_right, "", merged)
            # Close the gap: stable sort puts the emptied slot after the word.
            order = tf.argsort(
                tf.cast(tf.equal(merged, ""), tf.int32), axis=1, stable=True
            )
            return (tf.gather(merged, order, batch_dims=1),)

        (symbols,) = tf.while_loop(
            keep_going,
            one_merge,
            (symbols,),
            shape_invariants=(tf.TensorShape([None, None]),),
        )
        return symbols

    def detokenize(self, inputs):
        """Ids to strings, reading each row only up to its first EOS.

        Padding is dropped, and so is a start-of-text id at the start of a
        row (GPT-2's "<|endoftext|>" is BOS and EOS at once); bytes that are
        not valid UTF-8 become U+FFFD, as in transformers.

        Args:
            inputs: int ids, dense `[T]` or `[B, T]`, or ragged `[B, None]`.

        Returns:
            A `tf.string` scalar for `[T]`, else a `tf.string` tensor `[B]`.
        """
        special = self.special_ids
        keep = None
        if isinstance(inputs, tf.RaggedTensor):
            keep = tf.ones_like(inputs, tf.bool).to_tensor(False)  # [B, T]
            inputs = inputs.to_tensor()
        ids = tf.cast(tf.convert_to_tensor(inputs), tf.int32)
        single = ids.shape.rank == 1
        if single:
            ids = ids[tf.newaxis]
        if keep is None:
            keep = tf.ones_like(ids, tf.bool)
        first = tf.range(tf.shape(ids)[1])[tf.newaxis, :] == 0
        if special.pad_id is not None:
            keep &= tf.not_equal(ids, special.pad_id)
        starts = tf.zeros_like(keep)
        if special.text_start_id is not None:
            starts = first & tf.equal(ids, special.text_start_id)
        if special.eos_id is not None:
            ends = tf.equal(ids, special.eos_id) & ~starts
            keep &= tf.equal(tf.cumsum(tf.cast(ends, tf.int32), axis=1), 0)
        keep &= ~starts
        tokens = tf.gather(tf.constant(self._tokens), tf.ragged.boolean_mask(ids, keep))
        text = tf.strings.reduce_join(tokens, axis=1)  # [B] of byte symbols
        characters = tf.strings.unicode_decode(text, "UTF-8")  # [B, None]
        byte_of = np.zeros(max(map(ord, self._byte_table.values())) + 1, "int32")
        for byte, symbol in self._byte_table.items():
            byte_of[ord(symbol)] = byte
        one_byte = tf.constant([bytes([b]) for b in range(256)])
        raw = tf.gather(one_byte, tf.gather(tf.constant(byte_of), characters))
        text = tf.strings.reduce_join(raw, axis=1)
        text = tf.strings.unicode_transcode(
            text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        return text[0] if single else text

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": dict(self._vocabulary),
                "merges": list(self._merges),
                "special_ids": self.special_ids.get_config(),
                "special_tokens": list(self._special_tokens),
            }
        )
        return config

    def save_files(self, path):
        """Writes `vocab.json` and `merges.txt` (Hugging Face's names) in
        `path`; returns their paths."""
        os.makedirs(path, exist_ok=True)
        vocabulary = os.path.join(path, "vocab.json")
        merges = os.path.join(path, "merges.txt")
        with open(vocabulary, "w", encoding="utf-8") as f:
            json.dump(self._vocabulary, f, ensure_ascii=False)
        with open(merges, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            f.writelines(rule + "\n" for rule in self._merges)
        return [vocabulary, merges]

    def save_assets(self, directory):
        """The files an export ships beside its graph (as `MarianTokenizer`)."""
        return self.save_files(directory)


def _looks_special(token):
    return len(token) > 2 and token.startswith("<") and token.endswith(">")


def _read_vocabulary(vocabulary):
    if isinstance(vocabulary, (str, os.PathLike)):
        if not os.path.isfile(vocabulary):
            raise FileNotFoundError(
                f"Vocabulary file not found: {os.fspath(vocabulary)!r}. A GPT-2 "
                "tokenizer needs vocab.json (token -> id) and merges.txt."
            )
        with open(vocabulary, encoding="utf-8") as f:
            vocabulary = json.load(f)
    if not isinstance(vocabulary, dict) or not vocabulary:
        raise ValueError(
            "vocabulary must be a non-empty dict token -> id or the path of a "
            f"vocab.json. Received: {type(vocabulary).__name__}"
        )
    return {str(k): int(v) for k, v in vocabulary.items()}


def _read_merges(merges):
    if isinstance(merges, (str, os.PathLike)):
        if not os.path.isfile(merges):
            raise FileNotFoundError(
                f"Merges file not found: {os.fspath(merges)!r}. A GPT-2 "
                "tokenizer needs vocab.json and merges.txt (one 'left right' "
                "rule per line, best first)."
            )
        with open(merges, encoding="utf-8") as f:
            merges = f.read().split("\n")
    rules = []
    for rule in merges:
        if isinstance(rule, (list, tuple)):
            rule = " ".join(rule)
        if not rule or rule.startswith("#version"):
            continue
        rules.append(rule)
    return rules
