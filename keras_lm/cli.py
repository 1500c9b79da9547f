"""`keras-lm`: translate or generate with an exported SavedModel.

    keras-lm translate --model exports/en_fr "Open the file" "Save changes?"
    echo "Quit the program" | keras-lm translate --model exports/en_fr
    keras-lm generate --model exports/lm --top-p 0.9 --seed 1 "Returns the"
    keras-lm prepare --tokenizer spm.model --output shards/wmt "wmt/*.tsv.gz"

Only TensorFlow and tensorflow_text are needed to run an export.
"""

import argparse
import sys


def _read_inputs(texts):
    if texts:
        return list(texts)
    lines = [line.rstrip("\n") for line in sys.stdin]
    return [line for line in lines if line.strip()]


def _run(args):
    import tensorflow as tf

    from keras_lm.export import load_exported

    texts = _read_inputs(args.texts)
    if not texts:
        raise SystemExit("keras-lm: no input text (give it as arguments or on stdin).")
    loaded = load_exported(args.model)
    batch = tf.constant(texts)
    if args.command == "translate":
        if "translate_ids" not in loaded.signatures:
            raise SystemExit(f"keras-lm: '{args.model}' is not a translator export.")
        outputs = loaded.signatures["serving_default"](text=batch)["translation"]
    else:
        if "sample" not in loaded.signatures:
            raise SystemExit(f"keras-lm: '{args.model}' is not a generator export.")
        if args.greedy:
            outputs = loaded.signatures["greedy"](prompt=batch)["text"]
        else:
            outputs = loaded.signatures["sample"](
                prompt=batch,
                temperature=tf.constant(args.temperature),
                top_p=tf.constant(args.top_p),
                seed=tf.constant(args.seed, tf.int64),
            )["text"]
    for text in outputs.numpy():
        print(text.decode("utf-8"))


def _prepare(args):
    from keras_lm.data import prepare_shards

    manifest = prepare_shards(
        args.inputs,
        args.tokenizer,
        args.output,
        kind=args.kind,
        num_workers=args.workers,
        on_bad_line=args.on_bad_line,
    )
    tokens = ", ".join(f"{n} {name}" for name, n in manifest["tokens"].items())
    skipped = sum(manifest["skipped"].values())
    # An LM record holds a block of documents.
    documents = f" of {manifest['documents']} documents" if args.kind == "lm" else ""
    print(
        f"{args.output}: {len(manifest['shards'])} shards, {manifest['records']} "
        f"records{documents}, tokens: {tokens}; {skipped} bad lines skipped"
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-lm", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    translate = commands.add_parser("translate", help="translate text")
    generate = commands.add_parser("generate", help="continue prompts")
    for sub in (translate, generate):
        sub.add_argument("--model", required=True, help="exported SavedModel directory")
        sub.add_argument("texts", nargs="*", help="inputs; read from stdin if none")
    generate.add_argument("--temperature", type=float, default=1.0)
    generate.add_argument("--top-p", type=float, default=0.9)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--greedy", action="store_true", help="greedy decoding")
    prepare = commands.add_parser(
        "prepare", help="tokenize text files into TFRecord shards (resumable)"
    )
    prepare.add_argument("--tokenizer", required=True, help="SentencePiece .model")
    prepare.add_argument("--output", required=True, help="directory for the shards")
    prepare.add_argument("--kind", choices=("translation", "lm"), default="translation")
    prepare.add_argument("--workers", type=int, default=None, help="processes")
    prepare.add_argument(
        "--on-bad-line", choices=("error", "skip"), default="error", dest="on_bad_line"
    )
    prepare.add_argument("inputs", nargs="+", help="files or globs (plain or .gz)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        _prepare(args) if args.command == "prepare" else _run(args)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"keras-lm: {error}") from None


if __name__ == "__main__":
    main()
