"""An exported translator called from 8 threads at once, as a server would.

For a bounded time, every thread sends its own request over and over; each
answer must equal what a serial call returned for that request, and the
process' resident memory must stay flat once warm (no per-call growth).
"""

import threading
import time

import numpy as np
import pytest

import keras_lm
from tests.conftest import requires_tensorflow
from tests.data.corpus_helpers import make_pairs
from tests.export.test_export_compiled import random_translator

pytestmark = [requires_tensorflow, pytest.mark.slow]

THREADS = 8
SECONDS = 3.0
PAIRS = make_pairs(80, seed=11, max_words=10)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    texts = [side for pair in PAIRS for side in pair]
    proto = keras_lm.tokenizers.train_sentencepiece(texts, vocab_size=60)
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    model = random_translator(tokenizer, seed=1)
    path = str(tmp_path_factory.mktemp("serving") / "translator")
    keras_lm.export.export_translator(
        model, tokenizer, path, num_beams=2, max_source_length=10, batch_size=4
    )
    return keras_lm.export.load_exported(path)


def _hammer(signature, requests, expected, seconds):
    """Each thread repeats its request until `seconds` pass; returns
    (calls made, mismatches, errors)."""
    stop = time.monotonic() + seconds
    calls, mismatches, errors = [0] * THREADS, [], []

    def serve(thread):
        request = requests[thread]
        try:
            while time.monotonic() < stop:
                out = signature(text=request)["translation"].numpy()
                calls[thread] += 1
                if out.tolist() != expected[thread]:
                    mismatches.append((thread, out.tolist()))
        except Exception as error:  # reported by the test, not swallowed
            errors.append(repr(error))

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return calls, mismatches, errors


@pytest.mark.parametrize("name", ["serving_default", "translate_xla"])
def test_eight_threads_get_serial_answers_with_steady_memory(loaded, name):
    signature = loaded.signatures[name]
    # Requests of different sizes and lengths, so threads hit several shapes.
    requests = [
        np.array([PAIRS[(7 * t + i) % len(PAIRS)][0] for i in range(1 + t % 5)])
        for t in range(THREADS)
    ]
    expected = [signature(text=r)["translation"].numpy().tolist() for r in requests]
    assert len({tuple(e) for e in expected}) == THREADS

    calls, mismatches, errors = _hammer(signature, requests, expected, 1.0)  # warm
    assert not errors and not mismatches
    before = _rss_bytes()
    calls, mismatches, errors = _hammer(signature, requests, expected, SECONDS)
    growth = _rss_bytes() - before
    assert not errors, errors[:3]
    assert not mismatches, mismatches[:3]
    assert min(calls) >= 1, calls  # every thread was served
    # Bounded, not proportional to the calls made: a leak of even a few KiB
    # per call over hundreds of calls, or a retrace per call, exceeds it.
    assert growth < 48 * 2**20, (growth, sum(calls))
