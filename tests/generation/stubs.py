"""Hand-made models with the decoding interface, for exact expectations.

`BigramLM` picks its next-token distribution from the last token only, from a
table written in the test, so the best sequences and their log-probabilities
are known in advance.
"""

import numpy as np
from keras import ops

IMPOSSIBLE = -1e9  # log-probability of a token the table never emits


class BigramLM:
    """Decoder-only stub: log P(next | last) = `log_table[last, next]`.

    Args:
        next_token_probabilities: dict `{last_id: {next_id: probability}}`;
            tokens without an entry get probability 0.
        vocabulary_size: V.
        max_sequence_length: longest prompt + generation.
    """

    def __init__(self, next_token_probabilities, vocabulary_size, max_sequence_length):
        table = np.full((vocabulary_size, vocabulary_size), IMPOSSIBLE, "float32")
        for last, row in next_token_probabilities.items():
            for token, probability in row.items():
                table[last, token] = np.log(probability)
        self.log_table = table
        self.vocabulary_size = vocabulary_size
        self.max_sequence_length = max_sequence_length

    def empty_cache(self, batch_size, max_length):
        # A real-shaped cache so the loops carry and reorder it.
        zeros = ops.zeros((batch_size, max_length, 1, 1), "float32")
        return ((zeros, zeros),)

    def decode_step(self, token_ids, cache, cache_update_index):
        logits = ops.take(ops.convert_to_tensor(self.log_table), token_ids, axis=0)
        return logits, cache  # [B, T, V]

    def log_probability(self, sequence):
        """Sum of log P over consecutive pairs of `sequence`."""
        return float(sum(self.log_table[a, b] for a, b in zip(sequence, sequence[1:])))
