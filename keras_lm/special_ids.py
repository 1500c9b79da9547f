"""A vocabulary's special ids, defined once and read everywhere.

keras_lm's own SentencePiece models use pad 0 / unk 1 / bos 2 / eos 3, but no
code may assume it: GPT-2 has no padding id and its id 0 is the token "!",
Marian (OPUS-MT) has eos 0 and pad = decoder start = the last id. Tokenizers
expose a `SpecialIds` as `tokenizer.special_ids`; models carry one in their
config as `special_ids`; masks, losses, metrics, pipelines, generation and
export read it from there.

Conventions that follow from it:
- Padding masks come from `pad_id` (or explicit masks), never from a literal.
  A vocabulary without padding (`pad_id=None`) pads generated rows with EOS.
- An encoder-decoder target starts with `start_id` (`decoder_start_id`, or BOS
  when that is not set) and ends with EOS; a source ends with EOS.
- A decoder-only text starts with `text_start_id` (BOS, or EOS where there is
  no BOS) and ends with EOS. Where the two ids are equal (GPT-2's
  `<|endoftext|>`), one token ends a document and starts the next.
- Every id but padding can be generated, id 0 included when it is a token.

This module needs neither Keras nor TensorFlow.
"""

import dataclasses

_FIELDS = ("pad_id", "unk_id", "bos_id", "eos_id", "decoder_start_id")


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    """Which ids of a vocabulary are padding, unknown, start and end.

    Args:
        pad_id: padding; never generated. None: the vocabulary has none.
        unk_id: unknown piece, or None.
        bos_id: beginning of a sequence, or None.
        eos_id: end of a sequence; generation stops at it. None: never stops
            early.
        decoder_start_id: first decoder token of an encoder-decoder model;
            None means `bos_id`.

    Example:
    >>> SpecialIds()  # keras_lm's SentencePiece default
    SpecialIds(pad_id=0, unk_id=1, bos_id=2, eos_id=3, decoder_start_id=None)
    >>> marian = SpecialIds(pad_id=58100, unk_id=1, bos_id=None, eos_id=0,
    ...                     decoder_start_id=58100)
    >>> marian.start_id, marian.fill_id
    (58100, 58100)
    """

    pad_id: int | None = 0
    unk_id: int | None = 1
    bos_id: int | None = 2
    eos_id: int | None = 3
    decoder_start_id: int | None = None

    def __post_init__(self):
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not _is_int(value) or value < 0:
                raise ValueError(
                    f"{name} must be a non-negative integer or None. "
                    f"Received: {name}={value!r}"
                )
            object.__setattr__(self, name, int(value))

    @property
    def start_id(self):
        """The first decoder token of an encoder-decoder target, or None."""
        return self.bos_id if self.decoder_start_id is None else self.decoder_start_id

    @property
    def text_start_id(self):
        """The token a decoder-only text (document or prompt) starts with."""
        return self.eos_id if self.bos_id is None else self.bos_id

    @property
    def fill_id(self):
        """What fills a generated row after its end: padding, else EOS."""
        return self.eos_id if self.pad_id is None else self.pad_id

    def check(self, vocabulary_size, needs=()):
        """Raise `ValueError` unless every id is in `[0, vocabulary_size)` and
        each field named in `needs` (e.g. `("eos_id",)`) is set."""
        for name in _FIELDS:
            value = getattr(self, name)
            if value is not None and value >= vocabulary_size:
                raise ValueError(
                    f"{name}={value} is outside the vocabulary of size "
                    f"{vocabulary_size}. Special ids must be in "
                    f"[0, {vocabulary_size})."
                )
        for name in needs:
            value = self.start_id if name == "start_id" else getattr(self, name)
            if value is None:
                raise ValueError(
                    f"This needs a vocabulary with {name} set. Received: {self}. "
                    "Give the tokenizer (train_sentencepiece(special_ids=...)) or "
                    "the model (special_ids=...) that id."
                )
        return self

    def get_config(self):
        """A plain dict, for a model's or layer's config."""
        return dataclasses.asdict(self)

    @classmethod
    def from_value(cls, value):
        """A `SpecialIds` from None (the default), a dict or a `SpecialIds`."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(_FIELDS))
            if unknown:
                raise ValueError(
                    f"Unknown special id names {unknown}. Expected some of "
                    f"{list(_FIELDS)}."
                )
            return cls(**value)
        raise TypeError(
            "special_ids must be a keras_lm.SpecialIds, a dict of ids or None. "
            f"Received: {type(value).__name__}"
        )


class SpecialIdAttributes:
    """`pad_id`, `unk_id`, `bos_id` and `eos_id` of a tokenizer, read from
    its `special_ids` (so the two can never disagree)."""

    @property
    def pad_id(self):
        return self.special_ids.pad_id

    @property
    def unk_id(self):
        return self.special_ids.unk_id

    @property
    def bos_id(self):
        return self.special_ids.bos_id

    @property
    def eos_id(self):
        return self.special_ids.eos_id


def special_ids_of(obj):
    """The `SpecialIds` of a tokenizer or model (anything with `special_ids`)."""
    value = getattr(obj, "special_ids", None)
    if value is None:
        raise ValueError(
            f"{type(obj).__name__} carries no special_ids. Pass a keras_lm "
            "tokenizer or model, or special ids explicitly."
        )
    return SpecialIds.from_value(value)


def _is_int(value):
    return isinstance(value, int) or type(value).__name__.startswith(("int", "uint"))
