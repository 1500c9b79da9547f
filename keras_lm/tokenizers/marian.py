"""Marian (OPUS-MT) tokenization in the TensorFlow graph, as a Keras layer.

Shapes: B = batch size, T = tokens per sequence.

A Marian model's ids are not SentencePiece ids: `source.spm` (encoder side)
and `target.spm` (decoder side) cut text into pieces, and `vocab.json` gives
each piece its model id (`</s>` 0, `<unk>` 1, ..., `<pad>` last). Pieces the
vocabulary lacks become `<unk>`. This layer reproduces transformers'
`MarianTokenizer` with TensorFlow ops, so it runs in `tf.data` and inside an
exported SavedModel.
"""

import base64
import json
import os
import re

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_lm.special_ids import SpecialIdAttributes, SpecialIds
from keras_lm.tokenizers.sentencepiece_tokenizer import SentencePieceTokenizer

FILES = ("source.spm", "target.spm", "vocab.json")
WORD_BOUNDARY = "▁"
# What Python's str.strip() removes (transformers strips decoded text); RE2's
# \s is ASCII only.
_WHITESPACE = (
    r"[\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)
# A leading language code such as ">>fr<<" is one piece, not SentencePiece's.
_LANGUAGE_CODE = r"(?s)^(>>.*?<<)?.*$"
_LANGUAGE_CODE_PREFIX = r"(?s)^>>.*?<<"


@keras.saving.register_keras_serializable(package="keras_lm")
class MarianTokenizer(SpecialIdAttributes, keras.layers.Layer):
    """Strings to Marian ids and back, as transformers' `MarianTokenizer`.

    `tokenize` cuts source text with the source SentencePiece model and maps
    each piece to its `vocab.json` id (unknown pieces to `<unk>`); a leading
    language code (">>fr<<") is kept as one piece. `tokenize_target` does the
    same with the target model (and `target_vocab.json` when the vocabularies
    are separate). As for keras_lm's `SentencePieceTokenizer`, no EOS is
    added: `keras_lm.tokenizers.encoding.encode_sources` appends it, which
    gives transformers' `tokenizer(text)["input_ids"]`. `detokenize` reads
    target ids up to the first EOS, drops `<pad>` and `<unk>`, and joins the
    pieces as `decode(ids, skip_special_tokens=True)` does.

    Special tokens written inside the text ("</s>", "<unk>", "<pad>") become
    their ids, and the text between them is tokenized piece by piece, as
    transformers does.

    Args:
        source_proto: the source SentencePiece model (`bytes` or a path).
        target_proto: the target SentencePiece model (`bytes` or a path).
        vocabulary: the pieces in id order (a list), or `vocab.json`'s
            `{piece: id}` with ids 0..N-1.
        target_vocabulary: the target side's pieces when the model has
            separate vocabularies; None when both share `vocabulary`.
        unk_token, eos_token, pad_token: the special pieces.
        decoder_start_id: the model's first decoder token; None for the pad
            id, as in every Marian model.
        **kwargs: base layer arguments.

    Example:
    >>> tokenizer = MarianTokenizer.from_directory("opus-mt-en-fr")
    >>> tokenizer.tokenize(["Hello world"])  # ragged int32 [1, None]
    """

    def __init__(
        self,
        source_proto,
        target_proto,
        vocabulary,
        target_vocabulary=None,
        unk_token="<unk>",
        eos_token="</s>",
        pad_token="<pad>",
        decoder_start_id=None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self._source = _PieceTokenizer(source_proto, name="source_pieces")
        self._target = _PieceTokenizer(target_proto, name="target_pieces")
        self.vocabulary = tuple(_pieces_in_id_order(vocabulary, "vocabulary"))
        self.target_vocabulary = (
            None
            if target_vocabulary is None
            else tuple(_pieces_in_id_order(target_vocabulary, "target_vocabulary"))
        )
        self.unk_token, self.eos_token, self.pad_token = unk_token, eos_token, pad_token
        ids = {piece: i for i, piece in enumerate(self.vocabulary)}
        for name, token in (
            ("unk_token", unk_token),
            ("eos_token", eos_token),
            ("pad_token", pad_token),
        ):
            if token not in ids:
                raise ValueError(
                    f"{name}={token!r} is not in the vocabulary "
                    f"({len(self.vocabulary)} pieces)."
                )
        pad_id = ids[pad_token]
        self.decoder_start_id = decoder_start_id
        self.special_ids = SpecialIds(
            pad_id=pad_id,
            unk_id=ids[unk_token],
            bos_id=None,
            eos_id=ids[eos_token],
            decoder_start_id=pad_id if decoder_start_id is None else decoder_start_id,
        )
        self._source_table = _lookup_table(self.vocabulary, ids[unk_token])
        target_pieces = self.target_vocabulary or self.vocabulary
        target_ids = {piece: i for i, piece in enumerate(target_pieces)}
        self._target_table = _lookup_table(
            target_pieces, target_ids.get(unk_token, ids[unk_token])
        )
        self._target_pieces = tf.constant(target_pieces, tf.string)
        self._dropped = sorted(
            {target_ids[t] for t in (unk_token, pad_token) if t in target_ids}
        )
        self._target_eos = target_ids.get(eos_token, ids[eos_token])
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @classmethod
    def from_directory(cls, path, decoder_start_id=None):
        """The tokenizer of a Hugging Face Marian directory (`source.spm`,
        `target.spm`, `vocab.json`, optional `target_vocab.json` and
        `tokenizer_config.json`)."""
        path = os.fspath(path)
        settings = {}
        config_file = os.path.join(path, "tokenizer_config.json")
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as f:
                settings = json.load(f)
        names = list(FILES)
        if settings.get("separate_vocabs"):
            names.append("target_vocab.json")
        missing = [n for n in names if not os.path.isfile(os.path.join(path, n))]
        if missing:
            raise FileNotFoundError(
                f"{path!r} lacks the Marian tokenizer files {missing} (a Marian "
                f"directory holds {names}). Copy them from the model's "
                "repository, e.g. with `huggingface-cli download`."
            )

        def read_json(name):
            with open(os.path.join(path, name), encoding="utf-8") as f:
                return json.load(f)

        def token(name, default):
            value = settings.get(name, default)
            return value.get("content", default) if isinstance(value, dict) else value

        return cls(
            source_proto=os.path.join(path, "source.spm"),
            target_proto=os.path.join(path, "target.spm"),
            vocabulary=read_json("vocab.json"),
            target_vocabulary=(
                read_json("target_vocab.json")
                if settings.get("separate_vocabs")
                else None
            ),
            unk_token=token("unk_token", "<unk>"),
            eos_token=token("eos_token", "</s>"),
            pad_token=token("pad_token", "<pad>"),
            decoder_start_id=decoder_start_id,
        )

    @property
    def source_proto(self):
        return self._source.proto

    @property
    def target_proto(self):
        return self._target.proto

    def call(self, inputs):
        return self.tokenize(inputs)

    def tokenize(self, inputs):
        """Source strings to ids: `[]` -> `[T]`, `[B]` -> ragged `[B, None]`."""
        return self._tokenize(inputs, self._source, self._source_table)

    def tokenize_target(self, inputs):
        """Target strings to ids, with the target SentencePiece model."""
        return self._tokenize(inputs, self._target, self._target_table)

    def _tokenize(self, inputs, pieces_tokenizer, table):
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        single = inputs.shape.rank == 0
        texts = inputs[tf.newaxis] if single else inputs  # [B]
        # As transformers does, special tokens written in the text are cut
        # out first and each stretch between them is tokenized on its own.
        specials = tf.constant(
            [self.eos_token, self.unk_token, self.pad_token], tf.string
        )
        pattern = "|".join(
            re.escape(t) for t in (self.eos_token, self.unk_token, self.pad_token)
        )
        segments = tf_text.regex_split(texts, pattern, pattern)  # [B, G]
        flat = segments.flat_values  # [N]
        special = tf.reduce_any(tf.equal(flat[:, None], specials[None]), axis=1)
        codes = tf.strings.regex_replace(flat, _LANGUAGE_CODE, r"\1")
        has_code = (tf.strings.length(codes) > 0) & ~special
        rests = tf.strings.regex_replace(
            flat, _LANGUAGE_CODE_PREFIX, "", replace_global=False
        )
        pieces = tf.concat(
            [
                _one_or_none(flat, special),
                _one_or_none(codes, has_code),
                pieces_tokenizer.tokenize(tf.where(special, "", rests)),
            ],
            axis=1,
        )  # [N, None]
        pieces = tf.RaggedTensor.from_row_splits(pieces, segments.row_splits)
        ids = tf.ragged.map_flat_values(table.lookup, pieces.merge_dims(1, 2))
        return ids[0] if single else ids

    def detokenize(self, inputs):
        """Target ids to strings, reading each row only up to its first EOS.

        Padding and `<unk>` are dropped, so a decoder's output
        (`[start] ... [EOS] [pad] ...`) turns back into plain text.

        Args:
            inputs: int ids, dense `[T]` or `[B, T]`, or ragged `[B, None]`.

        Returns:
            A `tf.string` scalar for `[T]`, else a `tf.string` tensor `[B]`.
        """
        keep = None
        if isinstance(inputs, tf.RaggedTensor):
            keep = tf.ones_like(inputs, tf.bool).to_tensor(False)  # [B, T]
            inputs = inputs.to_tensor()
        ids = tf.cast(tf.convert_to_tensor(inputs), tf.int32)
        single = ids.shape.rank == 1
        if single:
            ids = ids[tf.newaxis]  # [1, T]
        if keep is None:
            keep = tf.ones_like(ids, tf.bool)
        for drop in self._dropped:
            keep &= tf.not_equal(ids, drop)
        seen_eos = tf.cumsum(tf.cast(tf.equal(ids, self._target_eos), tf.int32), axis=1)
        keep &= tf.equal(seen_eos, 0)
        kept = tf.ragged.boolean_mask(ids, keep)
        pieces = tf.gather(self._target_pieces, kept)  # ragged [B, None]
        text = tf.strings.reduce_join(pieces, axis=1)
        text = tf.strings.regex_replace(text, WORD_BOUNDARY, " ")
        text = tf.strings.regex_replace(text, f"^{_WHITESPACE}+|{_WHITESPACE}+$", "")
        return text[0] if single else text

    def save_assets(self, directory):
        """Write the Marian tokenizer files into `directory` (what
        `from_directory` reads); returns their paths. Exports keep them as
        SavedModel assets, for tools that want the vocabulary."""
        paths = []
        files = [
            ("source.spm", self.source_proto),
            ("target.spm", self.target_proto),
            ("vocab.json", _json(self.vocabulary)),
        ]
        if self.target_vocabulary is not None:
            files.append(("target_vocab.json", _json(self.target_vocabulary)))
        for name, content in files:
            paths.append(os.path.join(directory, name))
            with open(paths[-1], "wb") as f:
                f.write(content)
        return paths

    def vocabulary_size(self):
        """Number of source ids (`vocab.json` entries), specials included."""
        return len(self.vocabulary)

    def id_to_token(self, token_id):
        """The piece for a target id, e.g. `"▁chat"`."""
        pieces = self.target_vocabulary or self.vocabulary
        if not 0 <= token_id < len(pieces):
            raise ValueError(
                f"token_id must be in [0, {len(pieces)}). Received: token_id={token_id}"
            )
        return pieces[token_id]

    def token_to_id(self, token):
        """The source id of a piece; raises `ValueError` if it is not one."""
        try:
            return self.vocabulary.index(token)
        except ValueError:
            raise ValueError(f"token {token!r} is not in the vocabulary.") from None

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "source_proto": _encode(self._source.proto),
                "target_proto": _encode(self._target.proto),
                "vocabulary": list(self.vocabulary),
                "target_vocabulary": (
                    None
                    if self.target_vocabulary is None
                    else list(self.target_vocabulary)
                ),
                "unk_token": self.unk_token,
                "eos_token": self.eos_token,
                "pad_token": self.pad_token,
                "decoder_start_id": self.decoder_start_id,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("source_proto", "target_proto"):
            if isinstance(config[key], str):
                config[key] = base64.b64decode(config[key])
        return cls(**config)


class _PieceTokenizer(SentencePieceTokenizer):
    """A SentencePiece model that returns piece strings: Marian maps pieces,
    not SentencePiece ids, to its vocabulary. Inherits the rebuilding of a
    SentencePiece resource that `tf.random.set_seed` destroyed."""

    def _make_sentencepiece(self):
        return tf_text.SentencepieceTokenizer(model=self._proto, out_type=tf.string)


def _one_or_none(values, present):
    """[N] strings -> ragged [N, 0 or 1]: the value where `present`."""
    return tf.RaggedTensor.from_row_lengths(
        tf.boolean_mask(values, present), tf.cast(present, tf.int64)
    )


def _pieces_in_id_order(vocabulary, name):
    if isinstance(vocabulary, dict):
        pieces = [None] * len(vocabulary)
        for piece, index in vocabulary.items():
            if not (isinstance(index, int) and 0 <= index < len(vocabulary)):
                raise ValueError(
                    f"{name} must number its {len(vocabulary)} pieces 0.."
                    f"{len(vocabulary) - 1}. Received: {piece!r}: {index!r}"
                )
            if pieces[index] is not None:
                raise ValueError(
                    f"{name} gives id {index} to both {pieces[index]!r} and {piece!r}."
                )
            pieces[index] = piece
        return pieces
    return [str(piece) for piece in vocabulary]


def _lookup_table(pieces, default_id):
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(pieces, tf.string),
            tf.range(len(pieces), dtype=tf.int32),
        ),
        default_value=default_id,
    )


def _json(pieces):
    vocabulary = {piece: i for i, piece in enumerate(pieces)}
    return json.dumps(vocabulary, ensure_ascii=False, indent=2).encode("utf-8")


def _encode(proto):
    return base64.b64encode(proto).decode("ascii")
