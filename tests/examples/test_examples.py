"""Each example runs a few steps on tiny data and produces every artifact."""

import json
import math
import os

import pytest

from tests.conftest import requires_tensorflow

pytestmark = [requires_tensorflow, pytest.mark.slow]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VERBS = [
    ("Open", "Ouvrez"),
    ("Close", "Fermez"),
    ("Save", "Enregistrez"),
    ("Print", "Imprimez"),
    ("Delete", "Supprimez"),
    ("Copy", "Copiez"),
]
OBJECTS = [
    ("the file", "le fichier"),
    ("the window", "la fenêtre"),
    ("the page", "la page"),
    ("the text", "le texte"),
    ("the program", "le programme"),
    ("the folder", "le dossier"),
    ("the message", "le message"),
    ("the image", "l'image"),
]
ENDINGS = [
    ("", ""),
    (" now", " maintenant"),
    (" again", " encore"),
    (" please", " s'il vous plaît"),
]
TSV = "\n".join(
    f"{v_en} {o_en}{e_en}.\t{v_fr} {o_fr}{e_fr}.\tCC-BY 2.0 (France) tatoeba.org"
    for v_en, v_fr in VERBS
    for o_en, o_fr in OBJECTS
    for e_en, e_fr in ENDINGS
)


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


def test_translation_example_produces_every_artifact(tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from examples.translate_en_fr.main import Config, run

    corpus = tmp_path / "pairs.tsv"
    corpus.write_text(TSV + "\nbroken line without a tab\n", encoding="utf-8")
    config = Config(
        dataset=f"tsv:{corpus}",
        output_dir=str(tmp_path / "run"),
        vocab_size=60,
        max_length=16,
        batch_size=16,
        steps=6,
        steps_per_epoch=3,
        warmup_steps=4,
        num_beams=2,
        eval_sentences=6,
    )
    results = run(config)

    assert math.isfinite(results["bleu"]) and 0.0 <= results["bleu"] <= 100.0
    assert math.isfinite(results["chrf"]) and results["test_sentences"] > 0
    assert results["steps"] == 6
    for plot in results["plots"]:
        assert os.path.getsize(plot) > 1000 and _is_png(plot)
    with open(os.path.join(config.output_dir, "results.json")) as f:
        assert json.load(f)["bleu"] == results["bleu"]
    assert os.path.exists(os.path.join(config.output_dir, "model.keras"))
    assert os.path.exists(os.path.join(config.output_dir, "spm_en_fr.model"))
    assert os.listdir(os.path.join(config.output_dir, "checkpoints"))

    loaded = tf.saved_model.load(results["saved_model"])
    translated = loaded.signatures["serving_default"](
        text=tf.constant(["Open the file.", ""])
    )["translation"].numpy()
    assert translated.shape == (2,) and all(isinstance(t, bytes) for t in translated)
    assert [s["english"] for s in results["samples"]]


def test_pretrain_finetune_example_reports_every_figure(tmp_path):
    from examples.pretrain_finetune_lm.main import Config, run

    config = Config(
        output_dir=str(tmp_path / "lm"),
        packages="keras_hub",
        max_documents=600,
        vocab_size=300,
        sequence_length=32,
        batch_size=8,
        hidden_dim=32,
        intermediate_dim=64,
        pretrain_steps=6,
        finetune_steps=4,
        per_family=12,
        sample_tokens=6,
    )
    results = run(config)
    for key in ("perplexity_before_pretraining", "perplexity_after_pretraining"):
        assert math.isfinite(results[key]) and results[key] > 1.0
    for key in ("finetuned_accuracy", "scratch_accuracy"):
        assert 0.0 <= results[key] <= 1.0
    assert results["chance_accuracy"] == pytest.approx(1 / 6)
    assert results["sample"].startswith("Returns the")
    with open(os.path.join(config.output_dir, "results.json")) as f:
        assert json.load(f)["sample"] == results["sample"]
    assert os.path.exists(os.path.join(config.output_dir, "pretrained.keras"))


def test_translation_example_refuses_bad_flags_before_training(tmp_path):
    from examples.translate_en_fr.main import Config, build_model, load_pairs, run

    with pytest.raises(ValueError, match="Unknown --dataset 'nope'.*tsv:PATH"):
        load_pairs("nope")
    with pytest.raises(ValueError, match="dropout=1.5"):
        build_model(Config(dropout=1.5), vocabulary_size=60)
    # The peak is checked where the schedule is made, before anything trains.
    corpus = tmp_path / "pairs.tsv"
    corpus.write_text(TSV, encoding="utf-8")
    config = Config(
        dataset=f"tsv:{corpus}",
        output_dir=str(tmp_path / "run"),
        vocab_size=60,
        max_length=16,
        batch_size=16,
        steps=2,
        learning_rate=0.0,
    )
    with pytest.raises(ValueError, match="peak_learning_rate=0.0"):
        run(config)
    assert not os.path.exists(os.path.join(config.output_dir, "model.keras"))
