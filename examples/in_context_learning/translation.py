"""Few-shot English->French translation of short software messages.

Real text, offline: the gettext catalogs installed with the system (see
`keras_lm.data.load_gettext_pairs`). Short entries ("Open folder" ->
"Ouvrir le dossier") are the items. Pretraining documents are runs of
consecutive entries of the catalogs written as `english = french | ...`;
catalogs are sorted by message, so neighbours often share words ("Open
file", "Open folder"), and a model that copies from its context predicts
better. Held-out entries (by a hash of the English text) never appear in
pretraining; each becomes a multiple-choice item whose candidates are its
French translation and the translations of other held-out entries.
"""

import hashlib
import random

TEMPLATE = "{english} ="
TARGET_TEMPLATE = " {french}"
SEPARATOR = " | "


def format_pair(english, french):
    return TEMPLATE.format(english=english) + TARGET_TEMPLATE.format(french=french)


def short_pairs(pairs, max_words=2, max_chars=40):
    """Pairs whose sides have at most `max_words` words (French: twice that)
    and `max_chars` characters, without the separator's character."""
    bar = SEPARATOR.strip()
    return [
        (english, french)
        for english, french in pairs
        if len(english.split()) <= max_words
        and len(french.split()) <= 2 * max_words
        and max(len(english), len(french)) <= max_chars
        and bar not in english + french
        and "=" not in english + french
    ]


def split_pairs(pairs, test_fraction=0.1):
    """(train, test) by a hash of the English text, in the given order."""
    train, test = [], []
    for pair in pairs:
        (test if _unit(pair[0]) < test_fraction else train).append(pair)
    return train, test


def pretraining_documents(train_pairs, pairs_per_document=8):
    """Runs of `pairs_per_document` consecutive pairs, one document each."""
    return [
        SEPARATOR.join(
            format_pair(*pair) for pair in train_pairs[i : i + pairs_per_document]
        )
        for i in range(0, len(train_pairs), pairs_per_document)
    ]


def multiple_choice_items(test_pairs, num_choices=4, max_items=300, seed=0):
    """Items `{"english", "french", "choices", "answer"}`: the French of
    `num_choices - 1` other held-out entries are the distractors."""
    if num_choices < 2:
        raise ValueError(f"num_choices must be at least 2. Received: {num_choices}")
    rng = random.Random(seed)
    pool = sorted({french for _, french in test_pairs})
    chosen = rng.sample(test_pairs, min(max_items, len(test_pairs)))
    items = []
    for english, french in chosen:
        others = rng.sample([f for f in pool if f != french], num_choices - 1)
        answer = rng.randrange(num_choices)
        others.insert(answer, french)
        items.append(
            {"english": english, "french": french, "choices": others, "answer": answer}
        )
    return items


def _unit(text):
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF


def similar_pairs(english, train_pairs, count, index=None):
    """The `count` training pairs sharing the most English words with
    `english` (ties: catalog order). `index` is `word_index(train_pairs)`,
    built once for many queries."""
    index = word_index(train_pairs) if index is None else index
    shared = {}
    for word in set(english.lower().split()):
        for position in index.get(word, ()):
            shared[position] = shared.get(position, 0) + 1
    ranked = sorted(shared, key=lambda position: (-shared[position], position))
    ranked += [p for p in range(len(train_pairs)) if p not in shared][
        : max(0, count - len(ranked))
    ]
    return [train_pairs[position] for position in ranked[:count]]


def word_index(train_pairs):
    """Lower-cased English word -> positions of the pairs that hold it."""
    index = {}
    for position, (english, _) in enumerate(train_pairs):
        for word in set(english.lower().split()):
            index.setdefault(word, []).append(position)
    return index
