"""Offline text for the pretrain-then-fine-tune example: Python docstrings.

Pretraining text is the docstrings of the third-party packages installed next
to keras_lm (Keras, TensorFlow, NumPy, ...). The downstream task is a
multiple-choice test on docstrings of Python's standard library, which
pretraining never sees: given the start of a docstring, pick its real last
words among the same words in other orders.
"""

import ast
import hashlib
import os
import random
import re
import sysconfig

# Directories under the standard library's root that hold third-party code,
# demos, or generated docstrings (one per codec, all alike).
_NOT_STDLIB = (
    "site-packages",
    "dist-packages",
    "idlelib",
    "lib2to3",
    "turtledemo",
    "encodings",
)


def iter_docstrings(root, min_chars=40, max_chars=600, skip_tests=True, skip_dirs=()):
    """Yield cleaned docstrings of modules, classes and functions under `root`.

    Files are visited in sorted order, so the result is deterministic.
    Files that do not parse are skipped.
    """
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in skip_dirs)
        if skip_tests and re.search(r"(^|/)(tests?|testing)(/|$)", directory):
            continue
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(directory, name)
            try:
                with open(path, encoding="utf-8") as f:
                    tree = ast.parse(f.read())
            except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
                continue
            for node in ast.walk(tree):
                if isinstance(
                    node,
                    (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef),
                ):
                    text = _clean(ast.get_docstring(node) or "")
                    if min_chars <= len(text):
                        yield text[:max_chars]


def _clean(text):
    first_paragraph = text.strip().split("\n\n")[0]
    return " ".join(first_paragraph.split())


def pretraining_texts(max_documents=20000, packages=None):
    """Docstrings of installed third-party packages (site-packages)."""
    site_packages = sysconfig.get_paths()["purelib"]
    if packages is None:
        packages = ("keras", "tensorflow", "numpy", "keras_hub", "matplotlib")
    texts = []
    for package in packages:
        root = os.path.join(site_packages, package)
        if os.path.isdir(root):
            texts.extend(iter_docstrings(root))
    texts = sorted(set(texts), key=_stable_key)[:max_documents]
    if not texts:
        raise RuntimeError(
            f"No docstrings found under {site_packages} for packages {packages}."
        )
    return texts


def ending_examples(
    ending_words=4,
    num_choices=4,
    max_train=1000,
    max_test=500,
    test_fraction=0.3,
    exclude=(),
    seed=0,
    packages=None,
):
    """(train, test) multiple-choice examples from standard-library docstrings.

    Each example is `(context, choices, answer)`: `context` is a docstring
    without its last `ending_words` words; `choices` holds `num_choices`
    endings, the real one at index `answer` and the others the same words in
    other orders, as in the minimal pairs of BLiMP (Warstadt et al., 2020).
    Every candidate holds the same words, so only knowing how the language
    orders words (and how the context continues) picks the real one.
    Docstrings in `exclude` (the pretraining text) are left out. The split is
    decided by a hash of the text, so it is the same on every machine with the
    same Python; `seed` only draws the reorderings and their positions.
    `packages` (names under the standard library's root) limits the search;
    None searches all of it.
    """
    if ending_words < 2 or num_choices < 2:
        raise ValueError(
            "Need ending_words >= 2 and num_choices >= 2. Received: "
            f"ending_words={ending_words}, num_choices={num_choices}"
        )
    stdlib = sysconfig.get_paths()["stdlib"]
    roots = [stdlib] if not packages else [os.path.join(stdlib, p) for p in packages]
    for root in roots:
        if not os.path.isdir(root):
            raise RuntimeError(f"Standard-library package not found: {root}")
    excluded = set(exclude)
    texts = sorted(
        {
            text
            for root in roots
            for text in iter_docstrings(root, skip_dirs=_NOT_STDLIB)
            if text not in excluded and len(text.split()) >= ending_words + 4
        },
        key=_selection_key,
    )
    texts = _one_per_context(texts, ending_words)
    train = [t for t in texts if _unit(t) >= test_fraction][:max_train]
    test = [t for t in texts if _unit(t) < test_fraction][:max_test]
    rng = random.Random(seed)
    return (
        _with_choices(train, ending_words, num_choices, rng),
        _with_choices(test, ending_words, num_choices, rng),
    )


def _with_choices(texts, ending_words, num_choices, rng):
    examples = []
    for text in texts:
        context, ending = _split_ending(text, ending_words)
        distractors = _reorderings(ending, num_choices - 1, rng)
        if distractors is None:
            continue  # too few distinct words to reorder
        answer = rng.randrange(num_choices)
        choices = sorted(distractors)
        choices.insert(answer, ending)
        examples.append((context, choices, answer))
    if not examples:
        raise RuntimeError("No standard-library docstring could be made an item.")
    return examples


def _reorderings(ending, count, rng, tries=200):
    """`count` distinct orders of `ending`'s words, none the real one."""
    words = ending.split()
    found = set()
    for _ in range(tries):
        shuffled = words[:]
        rng.shuffle(shuffled)
        candidate = " ".join(shuffled)
        if candidate != ending:
            found.add(candidate)
            if len(found) == count:
                return found
    return None


def _one_per_context(texts, ending_words):
    """Drops docstrings whose start repeats an earlier one's (generated
    codecs, overloads): a repeated context would make a test item a copy of
    a training item."""
    seen, kept = set(), []
    for text in texts:
        context = _split_ending(text, ending_words)[0]
        if context not in seen:
            seen.add(context)
            kept.append(text)
    return kept


def _split_ending(text, ending_words):
    words = text.split()
    return " ".join(words[:-ending_words]), " ".join(words[-ending_words:])


def _stable_key(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _selection_key(text):
    return _stable_key("select:" + text)


def _unit(text):
    return int(_stable_key(text)[:8], 16) / 0xFFFFFFFF
