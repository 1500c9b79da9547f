"""A bounded random sample of a streamed corpus, to train a tokenizer on."""

import gzip
import logging
import random

from keras_lm.data.prepare import parse_line
from keras_lm.data.sources import expand_files

logger = logging.getLogger("keras_lm.data")


def sample_texts(source, max_texts=1_000_000, kind="translation", seed=0):
    """Up to `max_texts` lines drawn uniformly at random from text files.

    One pass over the files with reservoir sampling: memory holds the
    sample, never the corpus, so a tokenizer can be trained on a corpus of
    any size. Lines are parsed as the streaming pipelines parse them; bad
    ones (not UTF-8, no tab, an empty side) are skipped, counted and logged.

    Args:
        source: a path, a glob or a list of paths (plain or `.gz`).
        max_texts: int, size of the sample (lines; a translation line gives
            both its sides).
        kind: `"translation"` (`source<TAB>target` lines, both sides kept)
            or `"lm"` (one document per line).
        seed: int seed of the sample.

    Returns:
        A list of `str`, in corpus order.

    Example:
    >>> texts = sample_texts("wmt/*.tsv.gz", max_texts=2_000_000)
    >>> proto = train_sentencepiece(texts, vocab_size=32000)
    """
    if isinstance(max_texts, bool) or not isinstance(max_texts, int) or max_texts < 1:
        raise ValueError(
            f"max_texts must be a positive integer. Received: max_texts={max_texts!r}"
        )
    rng = random.Random(seed)
    reservoir, seen, skipped = [], 0, {}
    for path in expand_files(source):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            for raw in f:
                row, reason = parse_line(raw, kind)
                if reason is not None:
                    skipped[reason] = skipped.get(reason, 0) + 1
                if row is None:
                    continue
                if len(reservoir) < max_texts:
                    reservoir.append((seen, row))
                else:
                    slot = rng.randrange(seen + 1)
                    if slot < max_texts:
                        reservoir[slot] = (seen, row)
                seen += 1
    if skipped:
        logger.warning("sample_texts: skipped bad lines %s", skipped)
    reservoir.sort()
    return [text for _, row in reservoir for text in row]
