"""Train/validation/test splits that never put one source sentence in two."""

import hashlib
import unicodedata


def split_pairs(pairs, validation_fraction=0.05, test_fraction=0.05, seed=0):
    """Splits pairs by a stable hash of their normalized source sentence.

    Every pair whose source normalizes to the same text (Unicode NFKC, case
    folded, whitespace collapsed) lands in the same split, so a test
    sentence is never also a training sentence, even when the corpus repeats
    it with different translations. The hash is SHA-256, so the split is the
    same on every run, process and machine for the same `seed`; adding pairs
    never moves existing ones between splits.

    Args:
        pairs: a sequence of `(source, target)` string tuples.
        validation_fraction: expected fraction of sources for validation.
        test_fraction: expected fraction of sources for test.
        seed: int mixed into the hash; a different seed gives a different,
            equally stable split.

    Returns:
        `(train, validation, test)` lists of pairs, each in input order.

    Example:
    >>> train, validation, test = split_pairs(pairs, test_fraction=0.1)
    """
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1). Received: {name}={value!r}")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            "validation_fraction + test_fraction must be < 1 to leave pairs for "
            f"training. Received: validation_fraction={validation_fraction}, "
            f"test_fraction={test_fraction}"
        )
    train, validation, test = [], [], []
    for pair in pairs:
        position = _unit_hash(_normalize(pair[0]), seed)
        if position < test_fraction:
            test.append(pair)
        elif position < test_fraction + validation_fraction:
            validation.append(pair)
        else:
            train.append(pair)
    return train, validation, test


def _normalize(text):
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _unit_hash(text, seed):
    """Maps text to a float in [0, 1), the same in every Python process."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
