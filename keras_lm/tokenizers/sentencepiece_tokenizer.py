"""SentencePiece tokenization in the TensorFlow graph, as a Keras layer.

Shapes: B = batch size, T = tokens per sequence.
"""

import base64
import os

import keras
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from keras_lm.special_ids import SpecialIdAttributes, SpecialIds


@keras.saving.register_keras_serializable(package="keras_lm")
class SentencePieceTokenizer(SpecialIdAttributes, keras.layers.Layer):
    """Strings to int32 ids and back with a SentencePiece model, in graph.

    Tokenization runs as TensorFlow ops (`tensorflow_text`), so it works
    inside `tf.data` maps, `tf.function`s and exported SavedModels. The model
    proto is stored base64-encoded in `get_config()`, so a `.keras` file holds
    everything needed to rebuild the layer, and the TensorFlow resource that
    holds the model is tracked on the layer, so a `tf.Module` that keeps the
    layer can be written with `tf.saved_model.save`.

    Loading a SavedModel that uses this layer needs `import tensorflow_text`
    first, which registers the SentencePiece ops.

    Args:
        proto: the serialized model (`bytes`, as returned by
            `train_sentencepiece`) or the path of a `.model` file.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        inputs: `tf.string` scalar or tensor of shape `[B]` (or anything
            `tf.convert_to_tensor` turns into one, e.g. a list of `str`).

    Returns:
        For a scalar, int32 ids of shape `[T]`; for `[B]`, an int32
        `tf.RaggedTensor` of shape `[B, None]`. No BOS/EOS is added.

    Example:
    >>> proto = train_sentencepiece(["the cat sat on the mat"] * 20, vocab_size=16)
    >>> tokenizer = SentencePieceTokenizer(proto=proto)
    >>> ids = tokenizer(["the cat", "the mat"])
    >>> tokenizer.detokenize(ids)  # [b"the cat", b"the mat"]
    """

    def __init__(self, proto, **kwargs):
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        self._proto = _read_proto(proto)
        processor = _load_processor(self._proto, proto)
        self._pieces = [
            processor.id_to_piece(i) for i in range(processor.get_piece_size())
        ]
        self._piece_ids = {piece: i for i, piece in enumerate(self._pieces)}
        # SentencePiece marks an absent special piece with -1.
        self.special_ids = SpecialIds(
            **{
                name: (None if value < 0 else value)
                for name, value in (
                    ("pad_id", processor.pad_id()),
                    ("unk_id", processor.unk_id()),
                    ("bos_id", processor.bos_id()),
                    ("eos_id", processor.eos_id()),
                )
            }
        )
        # Assigning the tensorflow_text tokenizer as an attribute makes its
        # model resource a tracked child of this layer; without that,
        # tf.saved_model.save fails with an "untracked resource" error.
        self._sentencepiece = self._make_sentencepiece()
        # Strings pass through as they are: Keras would otherwise try to
        # convert them to the layer's numeric dtype.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def _make_sentencepiece(self):
        return tf_text.SentencepieceTokenizer(model=self._proto, out_type=tf.int32)

    def _run(self, fn):
        # tf.random.set_seed (so also keras.utils.set_random_seed) clears
        # TensorFlow's eager kernel cache, which destroys the SentencePiece
        # resource of every tokenizer already built. A graph being traced (a
        # tf.data map, a tf.function, an export) would capture the dead
        # handle and fail later with "Resource ... does not exist", so check
        # the resource eagerly first and rebuild it if it is gone.
        if not tf.executing_eagerly():
            with tf.init_scope():
                if tf.executing_eagerly():
                    self._ensure_resource()
            return fn(self._sentencepiece)
        try:
            return fn(self._sentencepiece)
        except tf.errors.NotFoundError:
            self._sentencepiece = self._make_sentencepiece()
            return fn(self._sentencepiece)

    def _ensure_resource(self):
        try:
            self._sentencepiece.vocab_size()
        except tf.errors.NotFoundError:
            self._sentencepiece = self._make_sentencepiece()

    def call(self, inputs):
        return self.tokenize(inputs)

    def tokenize(self, inputs):
        """Strings to int32 ids: `[]` -> `[T]`, `[B]` -> ragged `[B, None]`.

        Empty strings give no ids; bytes that are not valid UTF-8 do not
        raise, they come out as the unknown id or as byte pieces.
        """
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        return self._run(lambda sentencepiece: sentencepiece.tokenize(inputs))

    def detokenize(self, inputs):
        """Ids to strings, reading each row only up to its first EOS.

        Padding and BOS ids are dropped, so the output of a decoder
        (`[BOS] ... [EOS] [PAD] ...`) turns back into plain text.

        Args:
            inputs: int ids, dense `[T]` or `[B, T]`, or ragged `[B, None]`.

        Returns:
            A `tf.string` scalar for `[T]`, else a `tf.string` tensor `[B]`.
            Ids outside the vocabulary raise `OutOfRangeError`; see
            `check_vocabulary_matches`.
        """
        special = self.special_ids
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
        for drop in {special.pad_id, special.bos_id, special.start_id} - {None}:
            keep &= tf.not_equal(ids, drop)
        if special.eos_id is not None:
            seen_eos = tf.cumsum(
                tf.cast(tf.equal(ids, special.eos_id), tf.int32), axis=1
            )
            keep &= tf.equal(seen_eos, 0)
        kept = tf.ragged.boolean_mask(ids, keep)
        text = self._run(lambda sentencepiece: sentencepiece.detokenize(kept))
        return text[0] if single else text

    def vocabulary_size(self):
        """Number of pieces, special ones included."""
        return len(self._pieces)

    def id_to_token(self, token_id):
        """The piece string for an id, e.g. `"▁chat"`."""
        if not 0 <= token_id < len(self._pieces):
            raise ValueError(
                f"token_id must be in [0, {len(self._pieces)}). "
                f"Received: token_id={token_id}"
            )
        return self._pieces[token_id]

    def token_to_id(self, token):
        """The id of a piece string; raises `ValueError` if it is not one."""
        if token not in self._piece_ids:
            raise ValueError(
                f"token {token!r} is not in the vocabulary. Pieces that start "
                "a word carry the '▁' prefix, e.g. '▁chat'."
            )
        return self._piece_ids[token]

    @property
    def proto(self):
        """The serialized SentencePiece model, as `bytes`."""
        return self._proto

    def get_config(self):
        config = super().get_config()
        config["proto"] = base64.b64encode(self._proto).decode("ascii")
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["proto"], str):
            config["proto"] = base64.b64decode(config["proto"])
        return cls(**config)


def _read_proto(proto):
    if isinstance(proto, (bytes, bytearray)):
        return bytes(proto)
    if isinstance(proto, (str, os.PathLike)):
        if not os.path.isfile(proto):
            raise FileNotFoundError(
                f"SentencePiece model file not found: '{proto}'. Pass the path of "
                "a `.model` file, or the proto bytes from train_sentencepiece()."
            )
        with open(proto, "rb") as f:
            return f.read()
    raise TypeError(
        "proto must be the model bytes or the path of a `.model` file. "
        f"Received: proto of type {type(proto).__name__}"
    )


def _load_processor(proto_bytes, source):
    where = f"'{source}'" if isinstance(source, (str, os.PathLike)) else "proto"
    try:
        if not proto_bytes:
            raise ValueError("it is empty")
        return spm.SentencePieceProcessor(model_proto=proto_bytes)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"{where} is not a SentencePiece model ({len(proto_bytes)} bytes: "
            f"{error}). Pass the bytes returned by train_sentencepiece() or the "
            "path of the `.model` file it wrote."
        ) from None


def check_vocabulary_matches(tokenizer, model_vocabulary_size):
    """Raises `ValueError` unless the tokenizer and model agree on vocabulary.

    A model whose embedding is larger than the tokenizer's vocabulary trains
    without error but wastes rows; a smaller one fails later with an
    out-of-range gather. Checking up front names both numbers instead.

    Args:
        tokenizer: a `SentencePieceTokenizer` (anything with
            `vocabulary_size()`).
        model_vocabulary_size: int, the model's `vocabulary_size`.

    Example:
    >>> check_vocabulary_matches(tokenizer, model_vocabulary_size=8000)
    """
    tokenizer_size = tokenizer.vocabulary_size()
    if tokenizer_size != model_vocabulary_size:
        raise ValueError(
            "The tokenizer and the model disagree on the vocabulary size: "
            f"tokenizer.vocabulary_size()={tokenizer_size}, "
            f"model vocabulary_size={model_vocabulary_size}. Build the model "
            f"with vocabulary_size={tokenizer_size}, or load the tokenizer it "
            "was trained with."
        )
