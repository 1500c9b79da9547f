"""Sequences of `symbol label` examples of a random mapping, one per sequence.

Each sequence draws its own mapping: `keys_per_mapping` symbols out of
`num_symbols`, each given a label drawn uniformly from `num_labels`. The
sequence then lists examples `symbol label` of that mapping in random order.
A label can only be known from an earlier example of the same symbol in the
same sequence: nothing learned from other sequences tells it, so without
examples (0 shots) the best guess is chance, 1 / `num_labels`. A model that
learns to find the symbol's earlier occurrence and copy the label after it
(an induction head, Olsson et al., 2022) predicts every repeated symbol.

Mappings are split by a hash of the mapping itself: a held-out mapping is
never a training sequence's mapping.

Token ids (no tokenizer): pad 0, unk 1, BOS 2, EOS 3 (keras_lm's default
special ids), then the symbols, then the labels.

Notation: N sequences, S shots (examples before the query).
"""

import dataclasses
import zlib

import numpy as np

FIRST_SYMBOL_ID = 4
BOS_ID = 2


@dataclasses.dataclass(frozen=True)
class MappingTask:
    """The vocabulary and the mapping distribution.

    Args:
        num_symbols: symbols a mapping's keys are drawn from.
        num_labels: labels a symbol can map to (chance is 1 / this).
        keys_per_mapping: symbols in one sequence's mapping.
        held_out_one_in: one mapping in this many (by hash) is held out.
    """

    num_symbols: int = 64
    num_labels: int = 8
    keys_per_mapping: int = 4
    held_out_one_in: int = 8

    def __post_init__(self):
        for name in ("num_symbols", "num_labels", "keys_per_mapping"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"{name} must be a positive integer. "
                    f"Received: {name}={getattr(self, name)}"
                )
        if self.keys_per_mapping > self.num_symbols:
            raise ValueError(
                "keys_per_mapping cannot exceed num_symbols. Received: "
                f"keys_per_mapping={self.keys_per_mapping}, "
                f"num_symbols={self.num_symbols}"
            )
        if self.held_out_one_in < 2:
            raise ValueError(
                "held_out_one_in must be at least 2. "
                f"Received: held_out_one_in={self.held_out_one_in}"
            )

    @property
    def vocabulary_size(self):
        return FIRST_SYMBOL_ID + self.num_symbols + self.num_labels

    @property
    def label_ids(self):
        first = FIRST_SYMBOL_ID + self.num_symbols
        return list(range(first, first + self.num_labels))

    @property
    def chance(self):
        return 1.0 / self.num_labels

    def token_name(self, token_id):
        """Readable name of an id: `s12` for symbols, `L3` for labels."""
        if token_id == BOS_ID:
            return "<s>"
        index = token_id - FIRST_SYMBOL_ID
        if 0 <= index < self.num_symbols:
            return f"s{index}"
        if 0 <= index - self.num_symbols < self.num_labels:
            return f"L{index - self.num_symbols}"
        return f"<{token_id}>"

    def is_held_out(self, keys, labels):
        """Whether the mapping `keys[i] -> labels[i]` is a held-out one."""
        order = np.argsort(keys)
        pairs = np.stack([keys[order], labels[order]], -1).astype("int32")
        return zlib.crc32(pairs.tobytes()) % self.held_out_one_in == 0

    def draw_mappings(self, count, rng, held_out):
        """[count, keys_per_mapping] symbol ids and label ids, held out or not."""
        keys, labels = [], []
        while len(keys) < count:
            key = FIRST_SYMBOL_ID + rng.choice(
                self.num_symbols, self.keys_per_mapping, replace=False
            )
            label = self.label_ids[0] + rng.integers(
                0, self.num_labels, self.keys_per_mapping
            )
            if self.is_held_out(key, label) == held_out:
                keys.append(key)
                labels.append(label)
        return np.array(keys, "int32"), np.array(labels, "int32")

    def examples(self, keys, labels, num_examples, rng):
        """[N, num_examples, 2] (symbol, label) pairs drawn from each mapping."""
        which = rng.integers(0, keys.shape[1], (keys.shape[0], num_examples))
        rows = np.arange(keys.shape[0])[:, None]
        return np.stack([keys[rows, which], labels[rows, which]], -1)


def training_sequences(task, count, shots_per_sequence, seed):
    """[count, 1 + 2 * shots_per_sequence] token ids: BOS then examples of
    one training (not held-out) mapping per row."""
    rng = np.random.default_rng(seed)
    keys, labels = task.draw_mappings(count, rng, held_out=False)
    pairs = task.examples(keys, labels, shots_per_sequence, rng)
    bos = np.full((count, 1), BOS_ID, "int32")
    return np.concatenate([bos, pairs.reshape(count, -1)], 1).astype("int32")


def evaluation_episodes(task, count, max_shots, seed):
    """Held-out episodes: `(shots [N, max_shots, 2], query [N], answer [N])`.

    The k-shot prompt of an episode is BOS, its first k shots, then the query
    symbol; its answer is the query's label under the episode's mapping. The
    query is drawn from the mapping, so it may or may not be among the shots.
    """
    rng = np.random.default_rng(seed)
    keys, labels = task.draw_mappings(count, rng, held_out=True)
    shots = task.examples(keys, labels, max_shots, rng)
    which = rng.integers(0, keys.shape[1], count)
    rows = np.arange(count)
    return shots, keys[rows, which], labels[rows, which]


def prompts(shots, query, num_shots):
    """[N, 2 + 2 * num_shots] prompt ids: BOS, the first shots, the query."""
    count = shots.shape[0]
    bos = np.full((count, 1), BOS_ID, "int32")
    examples = shots[:, :num_shots].reshape(count, -1)
    return np.concatenate([bos, examples, query[:, None]], 1).astype("int32")


def query_in_context(shots, query, num_shots):
    """[N] whether each query symbol appears among its first shots."""
    return (shots[:, :num_shots, 0] == query[:, None]).any(-1)
