"""Pretrain small language models and measure in-context learning: accuracy
against the number of examples (shots) in the prompt.

Part 1, random mappings: sequences of `symbol label` examples of a mapping
drawn afresh for each sequence, so a label can only be inferred from the
sequence's own examples. Scored on held-out mappings, k-shot prompts, the
model's most likely label among all labels (chance 1 / num_labels).
Part 2, real text: few-shot English->French translation of short software
messages from the system's gettext catalogs, multiple choice among French
candidates scored by log-likelihood.

    python -m examples.in_context_learning.main
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np

import keras_lm
from examples import flags
from examples.flags import option
from examples.in_context_learning import mappings, translation


@dataclasses.dataclass
class Config:
    output_dir: str = option(
        "runs/in_context_learning", "where the results, plot and models go"
    )
    seed: int = option(0, "seed for weights, data and evaluation episodes")
    shots: str = option(
        "0,1,2,4,8,16", "comma-separated shot counts scored on held-out mappings"
    )
    num_symbols: int = option(64, "symbols the mappings' keys are drawn from")
    num_labels: int = option(8, "labels a symbol maps to; chance is 1/this")
    keys_per_mapping: int = option(4, "symbols in each sequence's mapping")
    shots_per_sequence: int = option(
        16,
        "shots before the last example of each training sequence (at least the "
        "largest shot count)",
    )
    num_layers: int = option(2, "Transformer blocks of the mapping model")
    num_heads: int = option(4, "attention heads per block of the mapping model")
    hidden_dim: int = option(64, "width of the mapping model")
    intermediate_dim: int = option(256, "feed-forward width of the mapping model")
    steps: int = option(1500, "training steps of the mapping model")
    batch_size: int = option(32, "sequences per training batch (both models)")
    learning_rate: float = option(2e-3, "peak learning rate of the mapping model")
    label_loss_only: bool = option(
        False,
        "train the mapping model on predicting labels only (symbols are random "
        "draws: predicting them teaches nothing)",
    )
    eval_episodes: int = option(
        1000, "held-out mappings scored per shot count (the same ones for each)"
    )
    translation: bool = option(
        True, "also run part 2, few-shot English->French translation"
    )
    similar_shots: bool = option(
        True,
        "also score translation prompts whose shots share the most English words "
        "with the query (besides randomly drawn shots)",
    )
    translation_shots: str = option(
        "0,1,2,4,8", "comma-separated shot counts of the translation part"
    )
    locale_dir: str = option(
        "/usr/share/locale", "root of the gettext catalogs (<dir>/fr/LC_MESSAGES)"
    )
    max_words: int = option(
        2, "longest English entry in words (French: twice this) kept as text"
    )
    pairs_per_document: int = option(
        8, "consecutive catalog entries per pretraining document"
    )
    translation_vocab_size: int = option(1000, "SentencePiece vocabulary size")
    translation_sequence_length: int = option(
        128, "tokens per pretraining window and longest scored prompt"
    )
    translation_hidden_dim: int = option(64, "width of the translation model")
    translation_intermediate_dim: int = option(
        256, "feed-forward width of the translation model"
    )
    translation_steps: int = option(600, "pretraining steps of the translation model")
    translation_learning_rate: float = option(
        1e-3, "peak learning rate of the translation model"
    )
    translation_items: int = option(300, "held-out multiple-choice items")
    num_choices: int = option(
        4, "French candidates per item: its translation and others' (chance 1/this)"
    )


def parse_shots(text, name):
    try:
        shots = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise ValueError(
            f"{name} must be comma-separated integers. Received: {name}={text!r}"
        ) from None
    if not shots or shots[0] < 0:
        raise ValueError(
            f"{name} must list non-negative shot counts. Received: {name}={text!r}"
        )
    return shots


def compile_for(model, learning_rate, steps):
    keras_lm.training.compile_model(
        model,
        learning_rate=keras_lm.schedules.WarmupCosine(
            peak_learning_rate=learning_rate,
            warmup_steps=max(1, steps // 10),
            total_steps=max(2, steps),
        ),
        label_smoothing=0.0,
        jit_compile=True,
    )


def train_mapping_model(config, task):
    """A `TransformerLM` trained on sequences of training mappings."""
    # BOS, shots_per_sequence examples, then the symbol of one more: the
    # longest prompt scored.
    sequence_length = 2 + 2 * config.shots_per_sequence
    sequences = mappings.training_sequences(
        task,
        config.steps * config.batch_size,
        config.shots_per_sequence + 1,
        config.seed,
    )
    inputs, labels = sequences[:, :-1], sequences[:, 1:]
    weights = np.ones(labels.shape, "float32")
    if config.label_loss_only:
        # Labels sit at odd positions of the targets (BOS s L s L ...).
        weights[:, 0::2] = 0.0
    model = keras_lm.models.TransformerLM(
        vocabulary_size=task.vocabulary_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        max_sequence_length=sequence_length,
        dropout=0.0,
    )
    compile_for(model, config.learning_rate, config.steps)
    history = model.fit(
        {"token_ids": inputs},
        labels,
        sample_weight=weights,
        batch_size=config.batch_size,
        epochs=1,
        shuffle=False,
        verbose=2,
    )
    return model, history.history


def mapping_accuracy(model, task, episodes, num_shots):
    """Share of episodes whose most likely label (log-likelihood of each
    label after the k-shot prompt) is the query's label."""
    shots, query, answer = episodes
    prompts = mappings.prompts(shots, query, num_shots)
    requests = [
        (prompt.tolist(), [label]) for prompt in prompts for label in task.label_ids
    ]
    scores = keras_lm.evaluation.loglikelihood_ids(model, requests, batch_size=256)
    scores = np.array([logprob for logprob, _ in scores]).reshape(len(prompts), -1)
    predicted = np.asarray(task.label_ids)[scores.argmax(-1)]
    return float((predicted == answer).mean())


def run_mappings(config):
    task = mappings.MappingTask(
        num_symbols=config.num_symbols,
        num_labels=config.num_labels,
        keys_per_mapping=config.keys_per_mapping,
    )
    shots = parse_shots(config.shots, "shots")
    if shots[-1] > config.shots_per_sequence:
        raise ValueError(
            f"The largest shot count ({shots[-1]}) exceeds the examples per "
            f"training sequence (shots_per_sequence={config.shots_per_sequence})."
        )
    model, history = train_mapping_model(config, task)
    model.save(os.path.join(config.output_dir, "mappings.keras"))
    episodes = mappings.evaluation_episodes(
        task, config.eval_episodes, shots[-1], seed=config.seed + 1
    )
    accuracy, in_context = [], []
    for k in shots:
        accuracy.append(mapping_accuracy(model, task, episodes, k))
        in_context.append(float(mappings.query_in_context(*episodes[:2], k).mean()))
        print(
            f"held-out mappings, {k:2d} shots: accuracy {accuracy[-1]:.3f} "
            f"(query among the shots in {in_context[-1]:.3f}; chance {task.chance:.3f})"
        )
    example = mappings.prompts(*episodes[:2], min(4, shots[-1]))[0]
    return {
        "shots": shots,
        "accuracy": accuracy,
        "chance": task.chance,
        "query_in_context": in_context,
        # What a model that copies the label of a shown symbol and guesses
        # otherwise would score.
        "copying_accuracy": [p + (1 - p) * task.chance for p in in_context],
        "episodes": config.eval_episodes,
        "final_training_loss": history["loss"][-1],
        "example_prompt": " ".join(task.token_name(int(t)) for t in example),
    }


def run_translation(config):
    shots = parse_shots(config.translation_shots, "translation_shots")
    pairs = translation.short_pairs(
        keras_lm.data.load_gettext_pairs(
            locale_dir=config.locale_dir, exclude_catalogs=["iso_*"]
        ),
        max_words=config.max_words,
    )
    train_pairs, test_pairs = translation.split_pairs(pairs)
    documents = translation.pretraining_documents(
        train_pairs, config.pairs_per_document
    )
    proto = keras_lm.tokenizers.train_sentencepiece(
        documents,
        vocab_size=config.translation_vocab_size,
        output_prefix=os.path.join(config.output_dir, "spm_en_fr"),
        seed=config.seed,
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    data = keras_lm.data.make_lm_dataset(
        documents,
        tokenizer,
        config.translation_sequence_length,
        config.batch_size,
        seed=config.seed,
    ).repeat()
    model = keras_lm.models.TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.translation_hidden_dim,
        intermediate_dim=config.translation_intermediate_dim,
        max_sequence_length=config.translation_sequence_length,
        dropout=0.1,
        special_ids=tokenizer.special_ids,
    )
    compile_for(model, config.translation_learning_rate, config.translation_steps)
    history = model.fit(
        data,
        steps_per_epoch=config.translation_steps,
        epochs=1,
        shuffle=False,
        verbose=2,
    )
    model.save(os.path.join(config.output_dir, "translation.keras"))

    items = translation.multiple_choice_items(
        test_pairs, config.num_choices, config.translation_items, seed=config.seed
    )
    pool = [{"english": e, "french": f} for e, f in train_pairs]
    index = translation.word_index(train_pairs)
    curves = {"random": ([], []), "similar": ([], [])}
    for k in shots:
        for selection, (accuracy, accuracy_norm) in curves.items():
            if selection == "similar" and not config.similar_shots:
                continue
            scored = [
                {
                    "context": keras_lm.evaluation.few_shot_prompt(
                        _shot_pool(selection, item, pool, train_pairs, index, k),
                        {"english": item["english"]},
                        template=translation.TEMPLATE,
                        target_template=translation.TARGET_TEMPLATE,
                        separator=translation.SEPARATOR,
                        num_shots=k,
                        seed=config.seed * 100003 + number,
                    ),
                    "choices": item["choices"],
                    "answer": item["answer"],
                }
                for number, item in enumerate(items)
            ]
            result = keras_lm.evaluation.multiple_choice(
                model, tokenizer, scored, batch_size=64
            )
            accuracy.append(result["acc"])
            accuracy_norm.append(result["acc_norm"])
            print(
                f"English->French, {k} {selection} shots: accuracy "
                f"{result['acc']:.3f} (length-normalised {result['acc_norm']:.3f}; "
                f"chance {1 / config.num_choices:.3f})"
            )
    return {
        "shots": shots,
        "accuracy": curves["random"][0],
        "accuracy_norm": curves["random"][1],
        **(
            {
                "accuracy_similar_shots": curves["similar"][0],
                "accuracy_norm_similar_shots": curves["similar"][1],
            }
            if config.similar_shots
            else {}
        ),
        "chance": 1.0 / config.num_choices,
        "items": len(items),
        "train_pairs": len(train_pairs),
        "held_out_pairs": len(test_pairs),
        "final_training_loss": history.history["loss"][-1],
        "example_prompt": scored[0]["context"],
        "example_choices": items[0]["choices"],
    }


def _shot_pool(selection, item, pool, train_pairs, index, k):
    """Random shots come from all training pairs; similar ones are the k
    pairs sharing the most English words with the item (in random order)."""
    if selection == "random":
        return pool
    return [
        {"english": e, "french": f}
        for e, f in translation.similar_pairs(item["english"], train_pairs, k, index)
    ]


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [("mappings", "Held-out random mappings")]
    if "translation" in results:
        parts.append(("translation", "English->French, multiple choice"))
    figure, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4))
    axes = np.atleast_1d(axes)
    for axis, (key, title) in zip(axes, parts):
        part = results[key]
        positions = np.arange(len(part["shots"]))
        similar = "accuracy_similar_shots" in part
        label = "model, random shots" if similar else "model"
        axis.plot(positions, part["accuracy"], marker="o", label=label)
        if similar:
            axis.plot(
                positions,
                part["accuracy_similar_shots"],
                marker="s",
                label="model, shots sharing words with the query",
            )
        if "copying_accuracy" in part:
            axis.plot(
                positions,
                part["copying_accuracy"],
                linestyle=":",
                color="gray",
                label="ideal copier",
            )
        axis.axhline(part["chance"], linestyle="--", color="red", label="chance")
        axis.set_xticks(positions, [str(k) for k in part["shots"]])
        axis.set_ylim(0.0, 1.0)
        axis.set_xlabel("shots (examples in the prompt)")
        axis.set_ylabel("accuracy")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(config):
    os.makedirs(config.output_dir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    start = time.time()
    results = {"mappings": run_mappings(config)}
    if config.translation:
        keras.utils.set_random_seed(config.seed)
        results["translation"] = run_translation(config)
    results["plot"] = plot(results, os.path.join(config.output_dir, "accuracy.png"))
    results["config"] = dataclasses.asdict(config)
    results["minutes"] = (time.time() - start) / 60
    with open(os.path.join(config.output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def make_parser():
    return flags.make_parser(Config, __doc__.split("\n\n")[0])


def main(argv=None):
    results = run(Config(**vars(make_parser().parse_args(argv))))
    print(f"plot: {results['plot']}")
    print(f"results: {os.path.join(results['config']['output_dir'], 'results.json')}")


if __name__ == "__main__":
    main()
