"""English-to-French translation, end to end, with keras_lm.

data -> shared SentencePiece vocabulary -> bucketed tf.data -> model.fit
(label smoothing, warmup schedule, XLA, checkpoints, TensorBoard) -> beam
search -> sacreBLEU / chrF -> SavedModel (strings in, strings out) -> plots.

    python -m examples.translate_en_fr.main --preset tiny --minutes 8
"""

import dataclasses
import json
import os
import time

import keras

import keras_lm
from examples import flags
from examples.flags import option
from examples.translate_en_fr.corpus import DATASETS, load_corpus


@dataclasses.dataclass
class Config:
    """Every field is also a command-line flag (`vocab_size` -> `--vocab-size`).

    The training defaults are for short runs on a few CPU cores (minutes, a
    couple of passes over ~50,000 pairs, batches of a few thousand tokens):
    no dropout (little to overfit in two epochs, and it costs a quarter of
    the step time on a CPU) and a peak learning rate of 2e-3 after 300
    warmup steps, decaying as 1/sqrt(step). For the paper's presets on real
    data use `--dropout 0.1`, `--warmup-steps 4000` and a peak near 7e-4.
    """

    dataset: str = option("catalog", DATASETS)
    preset: str = option(
        "tiny", "model size: tiny, small, transformer_base or transformer_big"
    )
    output_dir: str = option("runs/translate_en_fr", "where everything is written")
    vocab_size: int = option(8000, "shared English+French SentencePiece pieces")
    max_length: int = option(
        48,
        "longest source or target, in pieces; also where sources are cut "
        "for evaluation and in the export",
    )
    batch_size: int = option(64, "sentence pairs per batch")
    max_tokens: int = option(
        0,
        "> 0: training batches hold up to this many tokens per side (buckets "
        "of one shape each) instead of --batch-size pairs",
    )
    minutes: float = option(8.0, "training budget in wall-clock minutes")
    steps: int = option(0, "> 0: train exactly this many steps (ignores --minutes)")
    steps_per_epoch: int = option(200, "steps between validations and checkpoints")
    learning_rate: float = option(2e-3, "peak learning rate, reached after warmup")
    warmup_steps: int = option(300, "steps of linear warmup")
    dropout: float = option(0.0, "dropout rate inside the blocks")
    label_smoothing: float = option(0.1, "label smoothing of the loss")
    num_beams: int = option(4, "beam width for evaluation and the export")
    eval_sentences: int = option(1000, "held-out sentences scored with BLEU/chrF")
    max_pairs: int = option(
        0, "> 0: use only this many pairs (smoke tests; not for files:GLOB)"
    )
    tokenizer_sample: int = option(
        1_000_000,
        "wmt14 and files:GLOB: pairs sampled from the training data to train "
        "SentencePiece on (the training data itself is streamed)",
    )
    mixed_precision: bool = option(False, "train with the mixed_bfloat16 policy")
    strategy: str = option(
        "auto", "auto, tpu, multi_worker, mirrored, one_device or default"
    )
    seed: int = option(0, "seed for the split, shuffling and initialisation")


def build_model(config, vocabulary_size):
    return keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=vocabulary_size,
        **dict(
            keras_lm.models.get_preset(config.preset),
            # Room for outputs longer than the longest training target
            # (translate_texts allows 1.5x the source plus 10).
            max_sequence_length=max(128, 2 * config.max_length + 10),
            dropout=config.dropout,
        ),
    )


def make_datasets(config, corpus, tokenizer, strategy):
    """`(train_data, validation_data, validation_steps)` for `corpus`.

    On a TPU (`keras_lm.distribute.needs_static_shapes`) every batch has
    the same shape, `[batch_size, max_length]`; elsewhere batches are
    bucketed by length, or by a token budget with `--max-tokens`.
    """
    static = keras_lm.distribute.needs_static_shapes(strategy)
    if static and config.max_tokens:
        raise ValueError(
            f"--max-tokens={config.max_tokens} makes batches of varying size, "
            "which a TPU cannot take. Pass --batch-size instead (every batch "
            "is then [batch_size, max_length])."
        )
    # Repeated, and never counted: a stream's length is unknown, so epochs
    # are --steps-per-epoch steps, not passes over the data.
    train_data = keras_lm.data.make_translation_dataset(
        corpus.train,
        tokenizer,
        None if config.max_tokens else config.batch_size,
        max_length=config.max_length,
        max_tokens=config.max_tokens or None,
        static_shapes=static,
        seed=config.seed,
    ).repeat()
    validation_data = keras_lm.data.make_translation_dataset(
        corpus.validation,
        tokenizer,
        config.batch_size,
        max_length=config.max_length,
        static_shapes=static,
        shuffle=False,
    )
    # A finite dataset of unknown length makes Keras warn on its first pass.
    validation_steps = sum(1 for _ in validation_data)
    return train_data, validation_data, validation_steps


def run(config):
    start = time.time()
    # First: a multi-worker strategy must exist before TensorFlow runs an op.
    strategy = keras_lm.distribute.get_strategy(config.strategy)
    # Every worker runs this program; only the chief writes config.output_dir,
    # the others write under output_dir/workers/<task>/.
    chief = keras_lm.distribute.is_chief(strategy)
    output_dir = keras_lm.distribute.output_dir_for(config.output_dir, strategy)
    os.makedirs(output_dir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras_lm.training.set_mixed_precision(True)

    corpus = load_corpus(
        config.dataset, config.max_pairs, config.tokenizer_sample, config.seed
    )
    print(
        f"train: {corpus.description}; pairs: {len(corpus.validation)} "
        f"validation, {len(corpus.test)} test"
    )

    # One vocabulary for both languages, so the embedding can be shared and
    # tied to the output layer.
    spm_prefix = os.path.join(output_dir, "spm_en_fr")
    keras_lm.tokenizers.train_sentencepiece(
        corpus.tokenizer_texts,
        vocab_size=config.vocab_size,
        output_prefix=spm_prefix,
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(spm_prefix + ".model")

    train_data, validation_data, validation_steps = make_datasets(
        config, corpus, tokenizer, strategy
    )

    preset = keras_lm.models.get_preset(config.preset)
    total_steps = config.steps or config.steps_per_epoch * 1000
    steps_per_epoch = min(config.steps_per_epoch, total_steps)
    epochs = max(1, total_steps // steps_per_epoch)
    callbacks = keras_lm.training.default_callbacks(
        config.output_dir, strategy=strategy
    )
    if not config.steps:
        callbacks.append(keras_lm.training.TimeLimit(minutes=config.minutes))
    history = keras_lm.training.train(
        lambda: build_model(config, tokenizer.vocabulary_size()),
        train_data,
        validation_data=validation_data,
        validation_steps=validation_steps,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        strategy=strategy,
        callbacks=callbacks,
        compile_options=dict(
            learning_rate=keras_lm.schedules.InverseSqrtWarmup.with_peak(
                config.learning_rate,
                hidden_dim=preset["hidden_dim"],
                warmup_steps=config.warmup_steps,
            ),
            label_smoothing=config.label_smoothing,
        ),
        verbose=2,
    )
    model = history.model
    if not chief:
        # The chief evaluates, exports and reports; the weights are the same.
        return {"chief": False, "output_dir": output_dir}
    model.save(os.path.join(output_dir, "model.keras"))

    # Evaluation and the export cut sources where training did, so the
    # SavedModel translates exactly what was scored.
    evaluation = corpus.test[: config.eval_sentences]
    hypotheses = keras_lm.generation.translate_texts(
        model,
        tokenizer,
        [source for source, _ in evaluation],
        num_beams=config.num_beams,
        max_source_length=config.max_length,
    )
    scores = keras_lm.evaluation.score_translations(
        hypotheses, [target for _, target in evaluation]
    )

    export_dir = os.path.join(output_dir, "saved_model")
    keras_lm.export.export_translator(
        model,
        tokenizer,
        export_dir,
        num_beams=config.num_beams,
        max_source_length=config.max_length,
    )

    loss_plot = keras_lm.visualize.plot_loss_curves(
        history, os.path.join(output_dir, "loss.png"), title="en->fr"
    )
    attention_plot = plot_one_attention(model, tokenizer, evaluation[0][0], config)

    samples = [
        {"english": source, "reference": target, "keras_lm": hypothesis}
        for (source, target), hypothesis in list(zip(evaluation, hypotheses))[:8]
    ]
    results = {
        "chief": True,
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "test_sentences": scores["sentences"],
        "bleu_signature": scores["bleu_signature"],
        "steps": int(model.optimizer.iterations.numpy()),
        "minutes": (time.time() - start) / 60,
        "saved_model": export_dir,
        "plots": [loss_plot, attention_plot],
        "samples": samples,
        "max_source_length": config.max_length,
    }
    with open(os.path.join(output_dir, "translations.txt"), "w") as f:
        f.writelines(hypothesis + "\n" for hypothesis in hypotheses)
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    return results


def plot_one_attention(model, tokenizer, sentence, config):
    """Heat map of the last decoder block's cross-attention for one sentence."""
    (translation_ids,) = keras_lm.generation.translate_ids(
        model,
        tokenizer,
        [sentence],
        num_beams=config.num_beams,
        max_source_length=config.max_length,
    )
    (source_ids,) = keras_lm.generation.encode_sources(
        tokenizer, [sentence], config.max_length
    )
    target_ids = [tokenizer.bos_id] + list(translation_ids)
    scores = model.cross_attention_scores(
        keras.ops.convert_to_tensor([source_ids], "int32"),
        keras.ops.convert_to_tensor([target_ids], "int32"),
    )
    return keras_lm.visualize.plot_attention(
        keras.ops.convert_to_numpy(scores)[0],
        [tokenizer.id_to_token(int(i)) for i in source_ids],
        [tokenizer.id_to_token(int(i)) for i in target_ids],
        os.path.join(config.output_dir, "attention.png"),  # the chief's
        title=sentence[:60],
    )


def make_parser():
    return flags.make_parser(Config, __doc__.split("\n\n")[0])


def main(argv=None):
    results = run(Config(**vars(make_parser().parse_args(argv))))
    if not results["chief"]:
        print(f"Worker done; its files are in {results['output_dir']}.")
        return
    print("\nSample translations:")
    for sample in results["samples"]:
        print(
            f"  EN  {sample['english']}\n  REF {sample['reference']}\n"
            f"  OUT {sample['keras_lm']}\n"
        )
    print(
        f"BLEU {results['bleu']:.1f}  chrF {results['chrf']:.1f} on "
        f"{results['test_sentences']} held-out sentences "
        f"({results['steps']} steps, {results['minutes']:.1f} min)"
    )
    print(f"SavedModel: {results['saved_model']}")
    print(f"Plots: {', '.join(results['plots'])}")


if __name__ == "__main__":
    main()
