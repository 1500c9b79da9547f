"""English-to-French translation: keras_lm's example vs the keras.io recipe.

Both sides get the same offline gettext pairs, the same train/validation/test
split (`split_pairs`, seed 0), literally the same SentencePiece vocabulary,
the same wall-clock training budget and the same scoring: sacreBLEU BLEU and
chrF on the first `--eval-sentences` test pairs. keras_lm runs first, through
`examples.translate_en_fr.main.run` (its own recipe: bucketing, label
smoothing, warmup schedule, beam search); the peer then loads the tokenizer
that run wrote and trains `bench.translation_peer` (keras-hub layers, padding
to 48, AdamW, greedy decoding). `--peer-only` trains the vocabulary the way
the example does and runs the peer alone.

Prints one JSON line and writes it to `--results`. `bleu_ratio` is keras_lm's
BLEU divided by the peer's.

    python -m bench.bench_translation --minutes 15
    python -m bench.bench_translation --peer-only --minutes 15
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_lm  # noqa: E402
import keras_lm.evaluation  # noqa: E402
from bench import translation_peer  # noqa: E402
from examples.translate_en_fr.corpus import load_pairs  # noqa: E402
from examples.translate_en_fr.main import Config, run  # noqa: E402

RESULTS = os.path.join("bench", "results", "translation.json")
PEER_ONLY_RESULTS = os.path.join("bench", "results", "translation_peer_only.json")


def parse_args(argv):
    defaults = Config()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=15.0, help="training budget for each side"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="> 0: train each side exactly this many steps",
    )
    parser.add_argument(
        "--peer-only",
        action="store_true",
        help="skip keras_lm; train the shared vocabulary here",
    )
    parser.add_argument(
        "--preset",
        default="small",
        help="keras_lm preset; 'small' has the peer's sizes",
    )
    parser.add_argument(
        "--peer-learning-rate",
        type=float,
        default=None,
        help="AdamW learning rate for the peer; default Keras' 1e-3, as in "
        "the recipe (at 3 + 3 post-norm blocks without warmup it stays near "
        "the unigram loss for the first hundreds of steps; 3e-4 learns)",
    )
    parser.add_argument("--vocab-size", type=int, default=defaults.vocab_size)
    parser.add_argument("--eval-sentences", type=int, default=defaults.eval_sentences)
    parser.add_argument(
        "--max-pairs",
        type=int,
        default=0,
        help="> 0: use only the first N pairs (smoke runs)",
    )
    parser.add_argument("--output-dir", default="runs/bench_translation")
    parser.add_argument(
        "--results",
        default=None,
        help=f"default {RESULTS} ({PEER_ONLY_RESULTS} with --peer-only)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    # keras-hub's layers warn on every trace that inner sublayers drop the
    # Keras mask; the blocks use it before that, so the warnings are noise.
    warnings.filterwarnings("ignore", message=".*does not support masking.*")
    config = Config(
        minutes=args.minutes,
        steps=args.steps,
        preset=args.preset,
        vocab_size=args.vocab_size,
        eval_sentences=args.eval_sentences,
        max_pairs=args.max_pairs,
        output_dir=os.path.join(args.output_dir, "keras_lm"),
    )

    pairs = load_pairs(config.dataset, config.max_pairs)
    train_pairs, validation_pairs, test_pairs = keras_lm.data.split_pairs(
        pairs, seed=config.seed
    )
    evaluation = test_pairs[: config.eval_sentences]

    keras_lm_scores = None
    if not args.peer_only:
        keras_lm_scores = run(config)
        keras.backend.clear_session()
    # Seeding TensorFlow drops the SentencePiece resources of tokenizers
    # that already exist ("Resource ... SentencepieceOp ... does not exist"
    # in tf.data), so the peer's seed is set before its tokenizer is made.
    keras.utils.set_random_seed(config.seed)
    if args.peer_only:
        tokenizer = train_shared_vocabulary(train_pairs, config)
    else:
        tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(
            os.path.join(config.output_dir, "spm_en_fr.model")
        )

    peer = run_peer(
        train_pairs,
        validation_pairs,
        evaluation,
        tokenizer,
        config,
        learning_rate=args.peer_learning_rate,
    )

    result = {
        "keras_lm": None
        if keras_lm_scores is None
        else {
            "bleu": keras_lm_scores["bleu"],
            "chrf": keras_lm_scores["chrf"],
            "steps": keras_lm_scores["steps"],
        },
        "keras_hub_recipe": peer,
        "bleu_ratio": (
            None
            if keras_lm_scores is None or not peer["bleu"]
            else keras_lm_scores["bleu"] / peer["bleu"]
        ),
        "minutes": args.minutes,
        "steps_limit": args.steps,
        "test_sentences": len(evaluation),
        "vocabulary_size": tokenizer.vocabulary_size(),
        "keras_lm_preset": None if args.peer_only else args.preset,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{keras.backend.backend()}",
        "command": "python -m bench.bench_translation " + " ".join(argv),
    }
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    path = args.results or (PEER_ONLY_RESULTS if args.peer_only else RESULTS)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(line + "\n")
    return result


def train_shared_vocabulary(train_pairs, config):
    """The vocabulary `examples/translate_en_fr` trains: en + fr train text."""
    prefix = os.path.join(config.output_dir, "spm_en_fr")
    keras_lm.tokenizers.train_sentencepiece(
        [text for pair in train_pairs for text in pair],
        vocab_size=config.vocab_size,
        output_prefix=prefix,
    )
    return keras_lm.tokenizers.SentencePieceTokenizer(prefix + ".model")


def run_peer(
    train_pairs, validation_pairs, evaluation, tokenizer, config, learning_rate=None
):
    """Trains and scores the keras.io recipe; returns its scores and timings."""
    model = translation_peer.build_peer_model(
        tokenizer.vocabulary_size(), learning_rate=learning_rate
    )
    train_data = translation_peer.make_peer_dataset(
        train_pairs, tokenizer, config.batch_size, seed=config.seed
    )
    validation_data = None
    if len(validation_pairs) >= config.batch_size:
        validation_data = translation_peer.make_peer_dataset(
            validation_pairs, tokenizer, config.batch_size, shuffle=False
        )
    training = translation_peer.train_peer(
        model,
        train_data,
        config.minutes,
        validation_data=validation_data,
        steps_per_epoch=config.steps_per_epoch,
        steps=config.steps,
    )

    start = time.monotonic()
    hypotheses = translation_peer.greedy_translate(
        model,
        tokenizer,
        [source for source, _ in evaluation],
        batch_size=config.batch_size,
    )
    decode_seconds = time.monotonic() - start
    scores = keras_lm.evaluation.score_translations(
        hypotheses, [target for _, target in evaluation]
    )
    return {
        "bleu": scores["bleu"],
        "chrf": scores["chrf"],
        "steps": training["steps"],
        "train_minutes": training["seconds"] / 60,
        "decode_minutes": decode_seconds / 60,
        "learning_rate": float(
            keras.ops.convert_to_numpy(model.optimizer.learning_rate)
        ),
        "jit_compile": bool(model.jit_compile),
        "bleu_signature": scores["bleu_signature"],
        "samples": [
            {"english": source, "reference": target, "keras_hub_recipe": output}
            for (source, target), output in list(zip(evaluation, hypotheses))[:5]
        ],
    }


if __name__ == "__main__":
    main()
