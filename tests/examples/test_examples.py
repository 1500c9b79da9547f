"""Each example runs a few steps on tiny data and produces every artifact."""

import json
import math
import os

import keras
import numpy as np
import pytest

import keras_lm
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

    # The reported BLEU is the BLEU of the translations the run wrote, against
    # the references of its own held-out split.
    from examples.translate_en_fr.corpus import load_pairs

    _, _, test_pairs = keras_lm.data.split_pairs(
        load_pairs(config.dataset), seed=config.seed
    )
    evaluation = test_pairs[: config.eval_sentences]
    with open(os.path.join(config.output_dir, "translations.txt")) as f:
        translations = f.read().splitlines()
    assert len(translations) == results["test_sentences"] == len(evaluation)
    rescored = keras_lm.evaluation.score_translations(
        translations, [target for _, target in evaluation]
    )
    assert rescored["bleu"] == pytest.approx(results["bleu"])
    assert rescored["chrf"] == pytest.approx(results["chrf"])
    assert results["steps"] == 6
    for plot in results["plots"]:
        assert os.path.getsize(plot) > 1000 and _is_png(plot)
    with open(os.path.join(config.output_dir, "results.json")) as f:
        assert json.load(f)["bleu"] == results["bleu"]
    assert os.path.exists(os.path.join(config.output_dir, "model.keras"))
    assert os.path.exists(os.path.join(config.output_dir, "spm_en_fr.model"))
    assert os.listdir(os.path.join(config.output_dir, "checkpoints"))

    # The export cuts sources where evaluation did (max_length): it returns
    # exactly the scored translations, long sources included.
    sources = [source for source, _ in evaluation]
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(
        os.path.join(config.output_dir, "spm_en_fr.model")
    )
    lengths = [len(ids) for ids in tokenizer.tokenize(sources).to_list()]
    assert max(lengths) >= config.max_length, "no source is long enough to be cut"
    loaded = tf.saved_model.load(results["saved_model"])
    translate = loaded.signatures["serving_default"]
    exported = translate(text=tf.constant(sources))["translation"].numpy()
    assert [t.decode("utf-8") for t in exported] == translations
    empty = translate(text=tf.constant([""]))["translation"].numpy()
    assert empty.shape == (1,) and isinstance(empty[0], bytes)
    assert [s["english"] for s in results["samples"]]


def spy_on_first_argument(monkeypatch, owner, name):
    """Replaces `owner.name` with a wrapper recording each call's first
    argument (the data a dataset is made from) in the returned list."""
    made = []
    function = getattr(owner, name)

    def spy(first, *args, **kwargs):
        made.append(first)
        return function(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return made


def test_pretrain_finetune_example_reports_every_figure(tmp_path, monkeypatch):
    from examples.pretrain_finetune_lm.main import Config, run

    made = spy_on_first_argument(monkeypatch, keras_lm.data, "make_lm_dataset")

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
        stdlib_packages="json,email,logging",
        train_items=40,
        test_items=20,
        num_choices=3,
        sample_tokens=6,
    )
    results = run(config)
    # Pretraining streams its documents from a file, one per line; the small
    # validation set is a list.
    train_source, validation_docs = made
    assert train_source == os.path.join(config.output_dir, "pretraining.txt")
    with open(train_source, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) + len(validation_docs) == config.max_documents
    assert not set(lines) & set(validation_docs)
    for key in ("perplexity_before_pretraining", "perplexity_after_pretraining"):
        assert math.isfinite(results[key]) and results[key] > 1.0
    for key in ("finetune_ending_perplexity", "scratch_ending_perplexity"):
        assert math.isfinite(results[key]) and results[key] > 1.0
    # Accuracies are shares of 20 items.
    for key in ("pretrained_zero_shot_accuracy", "finetuned_accuracy"):
        assert (results[key] * 20) == pytest.approx(round(results[key] * 20))
    assert results["chance_accuracy"] == pytest.approx(1 / 3)
    assert results["sample"].startswith("Returns the")
    with open(os.path.join(config.output_dir, "results.json")) as f:
        assert json.load(f)["sample"] == results["sample"]
    reloaded = keras.saving.load_model(
        os.path.join(config.output_dir, "pretrained.keras")
    )
    assert (
        reloaded.special_ids
        == keras_lm.tokenizers.SentencePieceTokenizer(
            os.path.join(config.output_dir, "spm.model")
        ).special_ids
    )


def test_written_documents_stay_one_line_each_and_pack_as_in_memory(tmp_path):
    from examples.pretrain_finetune_lm.main import write_documents

    documents = [
        "Returns the sum.\nSee also: mean.",
        "  Splits\r\nthe\tarray  ",
        "One line.",
        " \n ",
    ]
    path = write_documents(documents, str(tmp_path / "docs.txt"))
    with open(path, encoding="utf-8", newline="") as f:
        assert f.read() == (
            "Returns the sum. See also: mean.\nSplits the array\nOne line.\n"
        )
    texts = [f"word{i} " * (i % 7 + 1) for i in range(200)]
    keras_lm.tokenizers.train_sentencepiece(
        texts, vocab_size=40, output_prefix=str(tmp_path / "spm")
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(str(tmp_path / "spm.model"))
    texts[3] = "word1 word2\nword3"
    streamed, in_memory = (
        [
            keras.ops.convert_to_numpy(batch[0]["token_ids"])
            for batch in keras_lm.data.make_lm_dataset(
                source, tokenizer, 8, 4, shuffle=False
            )
        ]
        for source in (write_documents(texts, str(tmp_path / "t.txt")), texts)
    )
    assert len(streamed) == len(in_memory) > 1
    np.testing.assert_array_equal(np.concatenate(streamed), np.concatenate(in_memory))


def test_choice_scores_are_each_endings_log_likelihood(tmp_path):
    """The example's batched scoring equals one forward pass per candidate,
    summed over the candidate's tokens and its EOS, with long contexts cut
    from the left."""
    from examples.pretrain_finetune_lm.main import choice_scores

    words = "alpha beta gamma delta epsilon zeta theta kappa".split()
    texts = [
        " ".join(words[(i * k) % 8] for k in range(1, 7)) + f" word{i}"
        for i in range(300)
    ]
    keras_lm.tokenizers.train_sentencepiece(
        texts, vocab_size=48, output_prefix=str(tmp_path / "spm")
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(str(tmp_path / "spm.model"))
    ids = tokenizer.special_ids
    keras.utils.set_random_seed(0)
    model = keras_lm.models.TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=24,
        special_ids=ids,
    )
    long_context = " ".join(["alpha beta gamma"] * 6)
    items = [
        ("alpha beta", ["zeta", "word3"], 0),
        (long_context, ["delta", "kappa word7"], 1),
    ]
    scores = choice_scores(model, tokenizer, items, sequence_length=24)
    assert scores.shape == (2, 2)
    for i, (context, choices, _) in enumerate(items):
        for j, ending in enumerate(choices):
            context_ids = tokenizer.tokenize(context).numpy().tolist()
            answer = tokenizer.tokenize(ending).numpy().tolist() + [ids.eos_id]
            # A window of 24 inputs holds 25 tokens: start, context, answer.
            assert len(answer) < 12
            room = 25 - 1 - len(answer)
            kept = context_ids[max(0, len(context_ids) - room) :]
            row = [ids.text_start_id] + kept + answer
            assert len(row) <= 25 and (i == 0 or len(kept) < len(context_ids))
            inputs = {"token_ids": np.array([row[:-1]], "int32")}
            logits = keras.ops.convert_to_numpy(model(inputs))[0]
            log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
            start = len(row) - 1 - len(answer)
            expected = sum(log_probs[start + k, answer[k]] for k in range(len(answer)))
            assert scores[i, j] == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("module", ["translate_en_fr", "pretrain_finetune_lm"])
def test_every_flag_has_help_text(module):
    import importlib

    parser = importlib.import_module(f"examples.{module}.main").make_parser()
    flags = [a for a in parser._actions if a.option_strings != ["-h", "--help"]]
    assert flags and all(a.help and a.help.strip() for a in flags)


def test_translation_example_refuses_bad_flags_before_training(tmp_path):
    from examples.translate_en_fr.corpus import load_pairs
    from examples.translate_en_fr.main import Config, build_model, run

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
