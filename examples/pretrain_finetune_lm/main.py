"""Pretrain a small decoder-only LM, then fine-tune it on a downstream task.

Pretraining text: docstrings of installed packages (offline). Downstream task:
name the standard-library package a docstring comes from, posed as text
("<docstring> Package: asyncio") and scored by the likelihood of each answer.
The pretrained model is compared with one trained from scratch on the same
fine-tuning budget.

    python -m examples.pretrain_finetune_lm.main --pretrain-steps 600
"""

import argparse
import dataclasses
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

import keras_lm
from examples.pretrain_finetune_lm import corpus

PROMPT = " Package:"


@dataclasses.dataclass
class Config:
    output_dir: str = "runs/pretrain_finetune_lm"
    vocab_size: int = 2000
    sequence_length: int = 64
    batch_size: int = 32
    num_layers: int = 2
    num_heads: int = 4
    hidden_dim: int = 128
    intermediate_dim: int = 512
    pretrain_steps: int = 600
    finetune_steps: int = 150
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 5e-4
    max_documents: int = 20000
    packages: str = "keras,tensorflow,numpy,keras_hub,matplotlib"
    per_family: int = 200
    sample_tokens: int = 24
    seed: int = 0


def build_model(config, vocabulary_size):
    return keras_lm.models.TransformerLM(
        vocabulary_size=vocabulary_size,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        hidden_dim=config.hidden_dim,
        intermediate_dim=config.intermediate_dim,
        max_sequence_length=config.sequence_length,
        dropout=0.1,
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


def pretrain(config, tokenizer, documents):
    """Returns the pretrained model and its validation perplexity before/after."""
    held_out = max(1, len(documents) // 20)
    validation_docs, train_docs = documents[:held_out], documents[held_out:]
    train_data = keras_lm.data.make_lm_dataset(
        train_docs,
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
    model = build_model(config, tokenizer.vocabulary_size())
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


def encode_examples(tokenizer, examples, families, sequence_length):
    """Token ids [E, T], labels, and weights on the answer tokens only."""
    answers = {f: list(tokenizer.tokenize(" " + f).numpy()) for f in families}
    longest_answer = max(len(a) for a in answers.values()) + 1  # + EOS
    rows, weights = [], []
    for text, family in examples:
        prompt = list(tokenizer.tokenize(text + PROMPT).numpy())
        prompt = prompt[: sequence_length + 1 - longest_answer]
        sequence = prompt + answers[family] + [tokenizer.eos_id]
        weight = [0.0] * len(prompt) + [1.0] * (len(answers[family]) + 1)
        pad = sequence_length + 1 - len(sequence)
        rows.append(sequence + [0] * pad)
        weights.append(weight + [0.0] * pad)
    rows = np.asarray(rows, "int32")
    # Inputs are tokens 0..T-1; labels are tokens 1..T with their weights.
    return rows[:, :-1], rows[:, 1:], np.asarray(weights, "float32")[:, 1:]


def finetune(model, config, tokenizer, train_examples, families):
    ids, labels, weights = encode_examples(
        tokenizer, train_examples, families, config.sequence_length
    )
    data = (
        tf.data.Dataset.from_tensor_slices(({"token_ids": ids}, labels, weights))
        .shuffle(len(ids), seed=config.seed)
        .repeat()
        .batch(config.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    compile_for(model, config.finetune_learning_rate, config.finetune_steps)
    model.fit(
        data,
        steps_per_epoch=config.finetune_steps,
        epochs=1,
        shuffle=False,
        verbose=2,
    )
    return model


def classify(model, tokenizer, examples, families, sequence_length):
    """Accuracy: pick the family whose answer tokens are most likely."""
    scores = np.zeros((len(examples), len(families)))
    for j, family in enumerate(families):
        candidates = [(text, family) for text, _ in examples]
        ids, labels, weights = encode_examples(
            tokenizer, candidates, families, sequence_length
        )
        logits = model.predict({"token_ids": ids}, batch_size=64, verbose=0)
        log_probs = _log_softmax(logits)
        token_log_probs = np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]
        scores[:, j] = (token_log_probs * weights).sum(-1)
    predicted = scores.argmax(-1)
    truth = np.array([families.index(family) for _, family in examples])
    return float((predicted == truth).mean())


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
    families = list(corpus.DEFAULT_FAMILIES)
    train_examples, test_examples = corpus.classification_examples(
        families, per_family=config.per_family
    )
    print(
        f"pretraining documents: {len(documents)}; downstream train/test: "
        f"{len(train_examples)}/{len(test_examples)} over {len(families)} packages"
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

    finetune(model, config, tokenizer, train_examples, families)
    pretrained_accuracy = classify(
        model, tokenizer, test_examples, families, config.sequence_length
    )
    keras.utils.set_random_seed(config.seed)
    scratch = build_model(config, tokenizer.vocabulary_size())
    finetune(scratch, config, tokenizer, train_examples, families)
    scratch_accuracy = classify(
        scratch, tokenizer, test_examples, families, config.sequence_length
    )
    results = {
        "perplexity_before_pretraining": perplexity_before,
        "perplexity_after_pretraining": perplexity_after,
        "uniform_perplexity": tokenizer.vocabulary_size(),
        "finetuned_accuracy": pretrained_accuracy,
        "scratch_accuracy": scratch_accuracy,
        "chance_accuracy": 1.0 / len(families),
        "sample": sample,
        "minutes": (time.time() - start) / 60,
    }
    with open(os.path.join(config.output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    print(
        f"downstream accuracy: pretrained+fine-tuned {pretrained_accuracy:.3f}, "
        f"from scratch {scratch_accuracy:.3f}, chance {1 / len(families):.3f}"
    )
    return results


def sample_text(model, tokenizer, prompt, config):
    prompt_ids = tokenizer.tokenize([prompt]).to_tensor().numpy().astype("int32")
    limit = config.sequence_length - prompt_ids.shape[1]
    output = model.generate(
        prompt_ids,
        max_new_tokens=min(config.sample_tokens, limit),
        method="sample",
        top_p=0.9,
        seed=config.seed,
    )
    return tokenizer.detokenize(output).numpy()[0].decode("utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for field in dataclasses.fields(Config):
        parser.add_argument(
            "--" + field.name.replace("_", "-"), type=field.type, default=field.default
        )
    results = run(Config(**vars(parser.parse_args(argv))))
    print(json.dumps(results, indent=2))
    if not math.isfinite(results["perplexity_after_pretraining"]):
        raise SystemExit("Pretraining diverged: perplexity is not finite.")


if __name__ == "__main__":
    main()
