"""Synthetic pairs and machine checks shared by the data tests."""

import pathlib
import random

import pytest

FRENCH_LOCALE = pathlib.Path("/usr/share/locale/fr/LC_MESSAGES")
requires_french_catalogs = pytest.mark.skipif(
    not any(FRENCH_LOCALE.glob("*.mo")),
    reason=f"no gettext catalogs under {FRENCH_LOCALE} on this machine",
)

_WORDS = [
    ("the", "le"),
    ("cat", "chat"),
    ("file", "fichier"),
    ("cannot", "impossible de"),
    ("open", "ouvrir"),
    ("save", "enregistrer"),
    ("folder", "dossier"),
    ("server", "serveur"),
    ("error", "erreur"),
    ("password", "mot de passe"),
    ("window", "fenêtre"),
    ("student", "élève"),
    ("where", "où"),
    ("already", "déjà"),
]


def make_pairs(count, seed=0, max_words=12):
    """Synthetic (english, french) pairs of varied length from a tiny lexicon."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        length = rng.randint(1, max_words)
        words = [rng.choice(_WORDS) for _ in range(length)]
        pairs.append((" ".join(w[0] for w in words), " ".join(w[1] for w in words)))
    return pairs


def write_tsv(path, pairs):
    """Writes pairs as `source<TAB>target` lines, gzip if the name ends .gz."""
    import gzip

    text = "".join(f"{source}\t{target}\n" for source, target in pairs)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        pathlib.Path(path).write_text(text, encoding="utf-8")
    return path


def write_lines(path, lines):
    """Writes one document per line, gzip if the name ends .gz."""
    import gzip

    text = "".join(f"{line}\n" for line in lines)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        pathlib.Path(path).write_text(text, encoding="utf-8")
    return path


def batches(dataset):
    """Every batch of a dataset as nested numpy arrays, for exact comparison."""
    import tensorflow as tf

    return [
        tf.nest.map_structure(lambda x: x.tolist(), b)
        for b in dataset.as_numpy_iterator()
    ]
