"""What a corpus reader kept and why it skipped the rest."""

import collections
import dataclasses
import logging

logger = logging.getLogger("keras_lm.data")


@dataclasses.dataclass
class CorpusReport:
    """Counts from one corpus read, returned with `return_report=True`.

    Attributes:
        sources: the files (or catalogs, or TFDS splits) read.
        pairs: how many (english, french) pairs were kept.
        skipped: `collections.Counter` of skipped entries by reason,
            e.g. `{"too_few_columns": 2, "not_utf8": 1}`.
    """

    sources: list = dataclasses.field(default_factory=list)
    pairs: int = 0
    skipped: collections.Counter = dataclasses.field(
        default_factory=collections.Counter
    )

    def summary(self):
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return f"{self.pairs} pairs from {len(self.sources)} source(s)" + (
            f"; skipped {skipped}" if skipped else ""
        )

    def log(self, what, warn_on_skips=True):
        """Logs the summary, as a warning if entries were skipped and
        `warn_on_skips` (skips that are routine cleaning log as info)."""
        level = logging.WARNING if warn_on_skips and self.skipped else logging.INFO
        logger.log(level, "%s: %s", what, self.summary())
