"""Pretrain a small decoder-only LM, then fine-tune it on a downstream task.

Pretraining text: docstrings of installed third-party packages (offline).
Downstream task: given the start of a docstring from Python's standard library
(never seen in pretraining), pick its real last words among the same words in
other orders, scored by the likelihood of each candidate. The pretrained model
is fine-tuned on the training items and compared with the same model trained
from scratch on the same fine-tuning budget.

    python -m examples.pretrain_finetune_lm.main
"""

import dataclasses
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

import keras_lm
from examples import flags
from examples.flags import option
from examples.pretrain_finetune_lm import corpus


@dataclasses.dataclass
class Config:
    output_dir: str = option(
        "runs/pretrain_finetune_lm", "where the tokenizer, model and results go"
    )
    vocab_size: int = option(2000, "SentencePiece vocabulary size")
    sequence_length: int = option(64, "tokens per training window")
    batch_size: int = option(32, "sequences per batch")
    num_layers: int = option(2, "Transformer blocks")
    num_heads: int = option(4, "attention heads per block")
    hidden_dim: int = option(128, "model width")
    intermediate_dim: int = option(512, "feed-forward width")
    dropout: float = option(0.1, "dropout rate")
    pretrain_steps: int = option(600, "pretraining steps")
    finetune_steps: int = option(
        150, "fine-tuning steps, the same for the pretrained and the scratch model"
    )
    learning_rate: float = option(1e-3, "peak learning rate for pretraining")
    finetune_learning_rate: float = option(
        5e-4, "peak learning rate for fine-tuning (both models)"
    )
    max_documents: int = option(20000, "most pretraining docstrings used")
    packages: str = option(
        "keras,tensorflow,numpy,keras_hub,matplotlib",
        "comma-separated installed packages whose docstrings are pretraining text",
    )
    stdlib_packages: str = option(
        "",
        "comma-separated standard-library packages the downstream items come "
        "from (empty: all of it)",
    )
    train_items: int = option(1000, "downstream training items")
    test_items: int = option(500, "downstream test items")
    num_choices: int = option(
        4, "candidate endings per item: the real one and reorderings (chance 1/this)"
    )
    ending_words: int = option(4, "words in each candidate ending (at least 2)")
    sample_tokens: int = option(24, "tokens in the sample printed after pretraining")
    seed: int = option(0, "seed for weights, data order and distractor choice")


def build_model(config, vocabulary_size, special_ids):
    return keras_lm.models.TransformerLM(
        vocabulary_size=vocabulary_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        max_sequence_length=config.sequence_length,
        dropout=config.dropout,
        special_ids=special_ids,
    )


def compile_for(model, learning_rate, total_steps):
    keras_lm.training.compile_model(
        model,
        learning_rate=keras_lm.schedules.WarmupCosine(
            peak_learning_rate=learning_rate,
            warmup_steps=max(1, total_steps // 10),
            total_steps=max(2, total_steps),
        ),
        label_smoothing=0.0,
    )


def write_documents(documents, path):
    """Writes `documents` one per line, as streamed LM corpora are stored.

    Runs of whitespace, newlines included, become one space (as
    `make_lm_dataset` does to documents given as strings), so each document
    stays one line and tokenizes as it would in memory.
    """
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for document in documents:
            line = " ".join(document.split())
            if line:
                f.write(line + "\n")
    return path


def pretrain(config, tokenizer, documents):
    """Returns the pretrained model and its validation perplexity before/after."""
    held_out = max(1, len(documents) // 20)
    validation_docs, train_docs = documents[:held_out], documents[held_out:]
    # Training streams a file, as a corpus larger than memory would be read
    # (the same windows as from the list); the small validation set stays
    # in memory.
    train_file = write_documents(
        train_docs, os.path.join(config.output_dir, "pretraining.txt")
    )
    train_data = keras_lm.data.make_lm_dataset(
        train_file,
        tokenizer,
        config.sequence_length,
        config.batch_size,
        seed=config.seed,
    ).repeat()
    validation_data = keras_lm.data.make_lm_dataset(
        validation_docs,
        tokenizer,
        config.sequence_length,
        config.batch_size,
        shuffle=False,
    )
    model = build_model(config, tokenizer.vocabulary_size(), tokenizer.special_ids)
    compile_for(model, config.learning_rate, config.pretrain_steps)
    before = model.evaluate(validation_data, verbose=0, return_dict=True)
    model.fit(
        train_data,
        steps_per_epoch=config.pretrain_steps,
        epochs=1,
        shuffle=False,
        verbose=2,
    )
    after = model.evaluate(validation_data, verbose=0, return_dict=True)
    return model, before["perplexity"], after["perplexity"]


def encode_choices(tokenizer, contexts, endings, sequence_length):
    """Inputs [N, T], labels [N, T] and weights on the ending tokens only.

    Each row is `[text start] + context + ending + [EOS]`, as pretraining
    documents are. A context too long for the window loses its start: the
    words next to the ending matter most.
    """
    ids = tokenizer.special_ids
    context_ids = tokenizer.tokenize(contexts).to_list()
    ending_ids = tokenizer.tokenize(endings).to_list()
    rows = np.full((len(contexts), sequence_length + 1), ids.fill_id, "int32")
    weights = np.zeros((len(contexts), sequence_length + 1), "float32")
    for i, (context, ending) in enumerate(zip(context_ids, ending_ids)):
        answer = (ending + [ids.eos_id])[:sequence_length]
        room = sequence_length + 1 - len(answer) - 1
        sequence = [ids.text_start_id] + context[max(0, len(context) - room) :]
        sequence = sequence[: sequence_length + 1 - len(answer)] + answer
        rows[i, : len(sequence)] = sequence
        weights[i, len(sequence) - len(answer) : len(sequence)] = 1.0
    # Inputs are tokens 0..T-1; labels are tokens 1..T with their weights.
    return rows[:, :-1], rows[:, 1:], weights[:, 1:]


def finetune(model, config, tokenizer, items):
    contexts = [context for context, _, _ in items]
    endings = [choices[answer] for _, choices, answer in items]
    ids, labels, weights = encode_choices(
        tokenizer, contexts, endings, config.sequence_length
    )
    data = (
        tf.data.Dataset.from_tensor_slices(({"token_ids": ids}, labels, weights))
        .shuffle(len(ids), seed=config.seed)
        .repeat()
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    compile_for(model, config.finetune_learning_rate, config.finetune_steps)
    history = model.fit(
        data,
        steps_per_epoch=config.finetune_steps,
        epochs=1,
        shuffle=False,
        verbose=2,
    )
    return history.history


def choice_scores(model, tokenizer, items, sequence_length):
    """[items, choices] log-likelihood of each candidate ending (and its EOS)
    after the item's context."""
    contexts = [context for context, choices, _ in items for _ in choices]
    endings = [ending for _, choices, _ in items for ending in choices]
    ids, labels, weights = encode_choices(tokenizer, contexts, endings, sequence_length)
    logits = model.predict({"token_ids": ids}, batch_size=128, verbose=0)
    log_probs = _log_softmax(logits.astype("float64"))
    token_log_probs = np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
    return (token_log_probs * weights).sum(-1).reshape(len(items), -1)


def choice_accuracy(model, tokenizer, items, sequence_length):
    """Share of items whose real ending has the highest log-likelihood."""
    scores = choice_scores(model, tokenizer, items, sequence_length)
    truth = np.array([answer for _, _, answer in items])
    return float((scores.argmax(-1) == truth).mean())


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def run(config):
    os.makedirs(config.output_dir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    start = time.time()
    documents = corpus.pretraining_texts(
        max_documents=config.max_documents, packages=config.packages.split(",")
    )
    train_items, test_items = corpus.ending_examples(
        ending_words=config.ending_words,
        num_choices=config.num_choices,
        max_train=config.train_items,
        max_test=config.test_items,
        exclude=documents,
        seed=config.seed,
        packages=[p for p in config.stdlib_packages.split(",") if p],
    )
    print(
        f"pretraining documents: {len(documents)}; downstream items "
        f"train/test: {len(train_items)}/{len(test_items)}, "
        f"{config.num_choices} choices each"
    )

    proto = keras_lm.tokenizers.train_sentencepiece(
        documents,
        vocab_size=config.vocab_size,
        output_prefix=os.path.join(config.output_dir, "spm"),
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)

    model, perplexity_before, perplexity_after = pretrain(config, tokenizer, documents)
    print(
        f"validation perplexity: {perplexity_before:.1f} before pretraining, "
        f"{perplexity_after:.1f} after (uniform would be "
        f"{tokenizer.vocabulary_size()})"
    )
    model.save(os.path.join(config.output_dir, "pretrained.keras"))
    sample = sample_text(model, tokenizer, "Returns the", config)
    print(f"top-p sample: {sample!r}")

    length = config.sequence_length
    zero_shot = choice_accuracy(model, tokenizer, test_items, length)
    pretrained_log = finetune(model, config, tokenizer, train_items)
    pretrained_accuracy = choice_accuracy(model, tokenizer, test_items, length)

    keras.utils.set_random_seed(config.seed)
    scratch = build_model(config, tokenizer.vocabulary_size(), tokenizer.special_ids)
    scratch_log = finetune(scratch, config, tokenizer, train_items)
    scratch_accuracy = choice_accuracy(scratch, tokenizer, test_items, length)

    results = {
        "perplexity_before_pretraining": perplexity_before,
        "perplexity_after_pretraining": perplexity_after,
        "uniform_perplexity": tokenizer.vocabulary_size(),
        "pretrained_zero_shot_accuracy": zero_shot,
        "finetuned_accuracy": pretrained_accuracy,
        "scratch_accuracy": scratch_accuracy,
        "chance_accuracy": 1.0 / config.num_choices,
        # Token accuracy and perplexity on the ending tokens of the last
        # fine-tuning batches (weighted metrics: the context is not scored).
        "finetune_ending_perplexity": pretrained_log["perplexity"][-1],
        "scratch_ending_perplexity": scratch_log["perplexity"][-1],
        "sample": sample,
        "config": dataclasses.asdict(config),
        "minutes": (time.time() - start) / 60,
    }
    with open(os.path.join(config.output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(
        f"downstream accuracy: pretrained+fine-tuned {pretrained_accuracy:.3f}, "
        f"from scratch {scratch_accuracy:.3f}, pretrained before fine-tuning "
        f"{zero_shot:.3f}, chance {1 / config.num_choices:.3f}"
    )
    return results


def sample_text(model, tokenizer, prompt, config):
    prompt_ids = np.asarray(
        keras_lm.generation.encode_prompts(tokenizer, [prompt], config.sequence_length),
        "int32",
    )
    limit = config.sequence_length - prompt_ids.shape[1]
    output = model.generate(
        prompt_ids,
        max_new_tokens=min(config.sample_tokens, limit),
        method="sample",
        top_p=0.9,
        seed=config.seed,
    )
    return tokenizer.detokenize(output).numpy()[0].decode("utf-8")


def make_parser():
    return flags.make_parser(Config, __doc__.split("\n\n")[0])


def main(argv=None):
    results = run(Config(**vars(make_parser().parse_args(argv))))
    print(f"results: {os.path.join(results['config']['output_dir'], 'results.json')}")
    if not math.isfinite(results["perplexity_after_pretraining"]):
        raise SystemExit("Pretraining diverged: perplexity is not finite.")


if __name__ == "__main__":
    main()
