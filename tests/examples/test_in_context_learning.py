"""The in-context learning example: its tasks, and a smoke run's artifacts."""

import glob
import json
import os

import numpy as np
import pytest

from examples.in_context_learning import mappings, translation
from tests.conftest import requires_tensorflow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HAS_CATALOGS = bool(glob.glob("/usr/share/locale/fr/LC_MESSAGES/*.mo"))


def test_held_out_mappings_never_occur_in_training():
    task = mappings.MappingTask(num_symbols=6, num_labels=2, keys_per_mapping=2)
    # 15 key sets x 4 labelings = 60 mappings: draws cover all of them.
    rng = np.random.default_rng(0)
    train = task.draw_mappings(2000, rng, held_out=False)
    test = task.draw_mappings(300, rng, held_out=True)

    def as_set(keys, labels):
        return {
            tuple(sorted(zip(k.tolist(), v.tolist()))) for k, v in zip(keys, labels)
        }

    train_set, test_set = as_set(*train), as_set(*test)
    assert test_set and len(train_set) > len(test_set)
    assert not train_set & test_set


def test_training_sequences_follow_one_mapping_per_row():
    task = mappings.MappingTask(num_symbols=10, num_labels=3, keys_per_mapping=3)
    sequences = mappings.training_sequences(task, 50, 12, seed=0)
    assert sequences.shape == (50, 25)
    assert (sequences[:, 0] == mappings.BOS_ID).all()
    symbols, labels = sequences[:, 1::2], sequences[:, 2::2]
    assert set(np.unique(labels)) <= set(task.label_ids)
    assert (symbols >= mappings.FIRST_SYMBOL_ID).all()
    assert (symbols < task.label_ids[0]).all()
    for row_symbols, row_labels in zip(symbols, labels):
        assert len(set(row_symbols.tolist())) <= 3
        seen = {}
        for symbol, label in zip(row_symbols.tolist(), row_labels.tolist()):
            assert seen.setdefault(symbol, label) == label


def test_prompts_end_with_the_query_after_the_first_shots():
    task = mappings.MappingTask()
    shots, query, answer = mappings.evaluation_episodes(task, 20, 8, seed=1)
    prompt = mappings.prompts(shots, query, 3)
    assert prompt.shape == (20, 8)
    np.testing.assert_array_equal(prompt[:, 1:-1], shots[:, :3].reshape(20, 6))
    np.testing.assert_array_equal(prompt[:, -1], query)
    assert mappings.prompts(shots, query, 0).shape == (20, 2)
    # Where the query is among the shots, the shot's label is its answer.
    for k in (1, 8):
        seen = mappings.query_in_context(shots, query, k)
        for row in np.flatnonzero(seen):
            position = list(shots[row, :k, 0]).index(query[row])
            assert shots[row, position, 1] == answer[row]
    assert not mappings.query_in_context(shots, query, 0).any()


def test_mapping_task_rejects_bad_sizes():
    with pytest.raises(ValueError, match="keys_per_mapping=5"):
        mappings.MappingTask(num_symbols=4, keys_per_mapping=5)
    with pytest.raises(ValueError, match="num_labels=0"):
        mappings.MappingTask(num_labels=0)


def test_translation_items_hold_their_answer_among_distinct_choices():
    pairs = [(f"word {i}", f"mot {i}") for i in range(200)]
    train, test = translation.split_pairs(pairs, test_fraction=0.2)
    assert not {e for e, _ in train} & {e for e, _ in test}
    items = translation.multiple_choice_items(test, num_choices=4, max_items=30)
    assert len(items) == min(30, len(test))
    for item in items:
        assert item["choices"][item["answer"]] == item["french"]
        assert len(set(item["choices"])) == 4
    documents = translation.pretraining_documents(train[:10], pairs_per_document=4)
    assert len(documents) == 3
    assert documents[0].split(translation.SEPARATOR) == [
        f"{english} = {french}" for english, french in train[:4]
    ]


def test_similar_pairs_rank_by_shared_english_words():
    train = [
        ("Close window", "Fermer la fenêtre"),
        ("Open file", "Ouvrir le fichier"),
        ("Print", "Imprimer"),
        ("Open recent file", "Ouvrir un fichier récent"),
        ("Save", "Enregistrer"),
    ]
    index = translation.word_index(train)
    assert translation.similar_pairs("open FILE now", train, 3, index) == [
        train[1],
        train[3],
        train[0],  # no shared word: filled in catalog order
    ]
    assert translation.similar_pairs("Close", train, 1) == [train[0]]


def test_bad_shot_flags_are_named():
    from examples.in_context_learning.main import Config, parse_shots, run_mappings

    assert parse_shots("8, 0,2,2", "shots") == [0, 2, 8]
    with pytest.raises(ValueError, match="shots='0,two'"):
        parse_shots("0,two", "shots")
    with pytest.raises(ValueError, match="translation_shots='-1'"):
        parse_shots("-1", "translation_shots")
    with pytest.raises(ValueError, match="shots_per_sequence=4"):
        run_mappings(Config(shots="0,8", shots_per_sequence=4))


@requires_tensorflow
@pytest.mark.slow
def test_smoke_run_writes_well_formed_results_and_a_png(tmp_path):
    import matplotlib.image

    from examples.in_context_learning.main import Config, run

    config = Config(
        output_dir=str(tmp_path / "run"),
        shots="0,1,2",
        num_symbols=8,
        num_labels=4,
        keys_per_mapping=2,
        shots_per_sequence=3,
        num_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        steps=3,
        batch_size=8,
        eval_episodes=20,
        translation=HAS_CATALOGS,
        translation_shots="0,1",
        translation_vocab_size=120,
        translation_sequence_length=48,
        translation_hidden_dim=16,
        translation_intermediate_dim=32,
        translation_steps=2,
        translation_items=10,
        num_choices=3,
    )
    results = run(config)

    with open(os.path.join(config.output_dir, "results.json")) as f:
        written = json.load(f)
    assert written["mappings"] == results["mappings"]
    parts = {"mappings": ([0, 1, 2], 1 / 4)}
    if HAS_CATALOGS:
        parts["translation"] = ([0, 1], 1 / 3)
    assert set(parts) <= set(written)
    for name, (shots, chance) in parts.items():
        part = written[name]
        assert part["shots"] == shots
        assert part["chance"] == pytest.approx(chance)
        curves = [key for key in part if key.startswith("accuracy")]
        assert "accuracy" in curves
        for key in curves:
            assert len(part[key]) == len(shots), key
            for value in part[key]:
                assert 0.0 <= value <= 1.0, (key, value)
    if HAS_CATALOGS:
        assert "accuracy_similar_shots" in written["translation"]
    mapping = written["mappings"]
    # With no shots the query is never in context; with more it can only grow.
    assert mapping["query_in_context"][0] == 0.0
    assert mapping["query_in_context"] == sorted(mapping["query_in_context"])

    assert written["plot"] == os.path.join(config.output_dir, "accuracy.png")
    with open(written["plot"], "rb") as f:
        assert f.read(8) == PNG_MAGIC
    image = matplotlib.image.imread(written["plot"])
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
