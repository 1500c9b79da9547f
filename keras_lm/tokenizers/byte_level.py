"""GPT-2's byte level: its split of text into words and its byte symbols.

Shapes: B texts, W words in the batch.
"""

import tensorflow as tf
import tensorflow_text as tf_text

# What Python's `regex` (and transformers) count as `\s`, written for RE2,
# whose own `\s` is ASCII only.
_SPACE = (
    r"\t\n\x{0b}\f\r \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}"
)
# GPT-2's pattern, `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
# ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, without the lookahead RE2 lacks: spaces
# are matched one by one here, then grouped as GPT-2 groups them
# (`_group_spaces`).
_WORD_PATTERN = (
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+"
    rf"| ?[^{_SPACE}\p{{L}}\p{{N}}]+|[{_SPACE}]"
)
_SPACES = rf"[{_SPACE}]+"
_ATTACHED = rf" [^{_SPACE}].*"  # a word that took the space before it


def bytes_to_unicode():
    """GPT-2's table: byte value -> one printable character."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def split_words(texts):
    """[B] texts -> ragged [B, W] words, as GPT-2's pattern splits them."""
    return _group_spaces(tf_text.regex_split(texts, _WORD_PATTERN, _WORD_PATTERN))


def _group_spaces(words):
    """Group single-space words [B, W] as GPT-2's `\\s+(?!\\S)|\\s+` does.

    A run of spaces before a word keeps its last space apart (that space
    either starts the word, " word", or stands alone before it); a run at the
    end of a text stays whole.
    """
    flat = words.flat_values
    rows = words.value_rowids()
    count = tf.shape(flat)[0]
    is_space = tf.strings.regex_full_match(flat, _SPACES)
    attached = tf.strings.regex_full_match(flat, _ATTACHED)

    def shifted(values, by, fill):
        pad = tf.fill([by], fill)
        return tf.concat([values[by:], pad], axis=0)

    same_row_1 = tf.equal(shifted(rows, 1, tf.constant(-1, rows.dtype)), rows)
    same_row_2 = tf.equal(shifted(rows, 2, tf.constant(-1, rows.dtype)), rows)
    next_space = shifted(is_space, 1, False) & same_row_1
    # The next space is the last of its run and stands alone before a word
    # that does not start with a space.
    alone = same_row_2 & ~shifted(is_space, 2, False) & ~shifted(attached, 2, False)
    joins_next = is_space & next_space & ~alone  # [W]: word i + 1 joins word i
    starts = tf.concat([[True], ~joins_next[:-1]], axis=0)[:count]
    group = tf.cumsum(tf.cast(starts, tf.int32)) - 1
    num_groups = tf.reduce_sum(tf.cast(starts, tf.int32))
    joined = tf.strings.unsorted_segment_join(flat, group, num_groups)
    group_rows = tf.boolean_mask(rows, starts)
    return tf.RaggedTensor.from_value_rowids(joined, group_rows, nrows=words.nrows())
