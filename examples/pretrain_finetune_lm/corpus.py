"""Offline text for the pretrain-then-fine-tune example: Python docstrings.

Pretraining text is the docstrings of the third-party packages installed next
to keras_lm (Keras, TensorFlow, NumPy, ...). The downstream task is to name
the standard-library package a docstring comes from (tkinter, asyncio, ...),
so pretraining never sees a downstream example.
"""

import ast
import hashlib
import os
import re
import sysconfig

DEFAULT_FAMILIES = ("asyncio", "email", "importlib", "logging", "tkinter", "xml")


def iter_docstrings(root, min_chars=40, max_chars=600, skip_tests=True):
    """Yield cleaned docstrings of modules, classes and functions under `root`.

    Files are visited in sorted order, so the result is deterministic.
    Files that do not parse are skipped.
    """
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
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


def classification_examples(
    families=DEFAULT_FAMILIES, per_family=200, test_fraction=0.25
):
    """(train, test) lists of (docstring, family) from the standard library.

    Each family contributes at most `per_family` examples, so classes are
    balanced; the split is decided by a hash of the text, so it is stable.
    """
    stdlib = sysconfig.get_paths()["stdlib"]
    train, test = [], []
    for family in families:
        root = os.path.join(stdlib, family)
        if not os.path.isdir(root):
            raise RuntimeError(f"Standard-library package {family!r} not found.")
        # Select by a different hash than the split uses: selecting the
        # smallest split hashes would put every selected text in the test set.
        texts = sorted(set(iter_docstrings(root)), key=_selection_key)[:per_family]
        for text in texts:
            bucket = test if _unit(text) < test_fraction else train
            bucket.append((text, family))
    return train, test


def _stable_key(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _selection_key(text):
    return _stable_key("select:" + text)


def _unit(text):
    return int(_stable_key(text)[:8], 16) / 0xFFFFFFFF
