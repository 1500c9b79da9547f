"""The translation example streams its large datasets (files:GLOB, wmt14)."""

import gzip
import os

import pytest

import keras_lm
from tests.conftest import requires_tensorflow
from tests.examples.test_examples import (
    ENDINGS,
    OBJECTS,
    VERBS,
    _is_png,
    spy_on_first_argument,
)

pytestmark = [requires_tensorflow, pytest.mark.slow]

PAIRS = [
    (f"{v_en} {o_en}{e_en}.", f"{v_fr} {o_fr}{e_fr}.")
    for v_en, v_fr in VERBS
    for o_en, o_fr in OBJECTS
    for e_en, e_fr in ENDINGS
]


def _tiny(**overrides):
    from examples.translate_en_fr.main import Config

    return Config(
        **dict(
            vocab_size=60,
            max_length=16,
            batch_size=16,
            steps=4,
            steps_per_epoch=2,
            warmup_steps=2,
            num_beams=2,
            eval_sentences=6,
            tokenizer_sample=500,
            **overrides,
        )
    )


def _tsv(pairs):
    return "".join(f"{english}\t{french}\n" for english, french in pairs)


def _spy_on_training_source(monkeypatch):
    """Records the data the example's datasets are made from."""
    return spy_on_first_argument(monkeypatch, keras_lm.data, "make_translation_dataset")


def test_files_dataset_streams_all_but_the_last_file(tmp_path, monkeypatch):
    from examples.translate_en_fr.main import run

    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.tsv").write_text(_tsv(PAIRS[:80]), encoding="utf-8")
    with gzip.open(data / "part-1.tsv.gz", "wt", encoding="utf-8") as f:
        f.write(_tsv(PAIRS[80:160]))
    held_out = PAIRS[160:]
    (data / "part-2.tsv").write_text(_tsv(held_out), encoding="utf-8")
    made = _spy_on_training_source(monkeypatch)
    config = _tiny(
        dataset=f"files:{data}/part-*",
        output_dir=str(tmp_path / "run"),
        max_tokens=64,
    )
    results = run(config)

    # Training reads the files themselves (streamed), never the held-out one;
    # validation and test are the held-out file's pairs.
    train_source, validation = made
    assert train_source == [data / "part-0.tsv", data / "part-1.tsv.gz"]
    assert set(validation) < set(held_out)
    with open(os.path.join(config.output_dir, "translations.txt")) as f:
        assert len(f.read().splitlines()) == results["test_sentences"]
    english = {source for source, _ in held_out} - {s for s, _ in validation}
    assert results["samples"] and all(
        sample["english"] in english for sample in results["samples"]
    )
    assert results["steps"] == 4
    for plot in results["plots"]:
        assert _is_png(plot)
    for name in ("model.keras", "spm_en_fr.model", "results.json"):
        assert os.path.exists(os.path.join(config.output_dir, name))
    assert os.path.exists(os.path.join(results["saved_model"], "saved_model.pb"))


def _wmt14_splits(self, split, **kwargs):
    """wmt14-shaped examples whose text says which split it comes from."""
    import tensorflow as tf

    pairs = {
        "train": PAIRS,
        "validation": [(f"{e} (2013)", f"{f} (2013)") for e, f in PAIRS[:20]],
        "test": [(f"{e} (2014)", f"{f} (2014)") for e, f in PAIRS[20:30]],
    }[split]
    english, french = zip(*pairs)
    return tf.data.Dataset.from_tensor_slices({"en": list(english), "fr": list(french)})


def test_wmt14_streams_train_and_scores_newstest2014(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from examples.translate_en_fr.main import run

    loaded = []
    load = keras_lm.data.load_tfds_pairs

    def spy_load(name, split="train", **kwargs):
        loaded.append((split, kwargs.get("max_examples")))
        return load(name, split=split, **kwargs)

    monkeypatch.setattr(keras_lm.data, "load_tfds_pairs", spy_load)
    made = _spy_on_training_source(monkeypatch)
    config = _tiny(dataset="wmt14", output_dir=str(tmp_path / "run"))
    with tfds.testing.mock_data(as_dataset_fn=_wmt14_splits):
        results = run(config)

    # The train split is streamed by name; only a bounded sample of it (for
    # SentencePiece) and the small validation and test splits become lists.
    assert made[0] == "wmt14_translate/fr-en"
    assert sorted(loaded) == [("test", None), ("train", 500), ("validation", None)]
    assert all(pair[0].endswith("(2013)") for pair in made[1])
    assert results["test_sentences"] == 6
    assert all(s["english"].endswith("(2014)") for s in results["samples"])
    assert results["steps"] == 4


def test_bad_files_glob_fails_before_training(tmp_path):
    from examples.translate_en_fr.corpus import load_corpus
    from examples.translate_en_fr.main import run

    with pytest.raises(ValueError, match=r"files:.*nothing-\*\.tsv matches no file"):
        load_corpus(f"files:{tmp_path}/nothing-*.tsv")
    only = tmp_path / "only.tsv"
    only.write_text(_tsv(PAIRS), encoding="utf-8")
    config = _tiny(dataset=f"files:{only}", output_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="only '.*only.tsv'.*at least two"):
        run(config)
    assert not os.path.exists(os.path.join(config.output_dir, "spm_en_fr.model"))
    with pytest.raises(ValueError, match="--max-pairs=10 does not apply"):
        load_corpus(f"files:{only}", max_pairs=10)
    (tmp_path / "tiny.tsv").write_text(_tsv(PAIRS[:1]), encoding="utf-8")
    with pytest.raises(ValueError, match="tiny.tsv.*too few to split"):
        load_corpus(f"files:{tmp_path}/*.tsv")


def test_tpu_batches_have_one_static_shape(tmp_path, monkeypatch):
    import tensorflow as tf

    from examples.translate_en_fr.corpus import Corpus
    from examples.translate_en_fr.main import make_datasets

    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(
        proto=keras_lm.tokenizers.train_sentencepiece(
            [text for pair in PAIRS for text in pair], vocab_size=60
        )
    )
    corpus = Corpus(PAIRS, [], PAIRS[:40], PAIRS[40:50], "in memory")
    # What get_strategy("tpu") gives on a TPU VM.
    monkeypatch.setattr(keras_lm.distribute, "needs_static_shapes", lambda s: True)
    strategy = tf.distribute.get_strategy()
    config = _tiny(dataset="catalog", output_dir=str(tmp_path))
    train, validation, steps = make_datasets(config, corpus, tokenizer, strategy)
    shapes = {
        tuple(inputs[name].shape)
        for inputs, _, _ in [*train.take(12), *validation]
        for name in inputs
    }
    assert shapes == {(config.batch_size, config.max_length)}
    assert steps == 40 // config.batch_size
    config = _tiny(dataset="catalog", output_dir=str(tmp_path), max_tokens=64)
    with pytest.raises(ValueError, match="--max-tokens=64 .* TPU cannot"):
        make_datasets(config, corpus, tokenizer, strategy)
