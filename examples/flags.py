"""Command-line flags from an example's `Config` dataclass.

Every field is a flag (`vocab_size` -> `--vocab-size`) with the help text
given by `option(...)` and its default shown in `--help`.
"""

import argparse
import dataclasses


def option(default, help):  # noqa: A002 - argparse's name
    """A dataclass field with a default and the help text of its flag."""
    return dataclasses.field(default=default, metadata={"help": help})


def make_parser(config_class, description):
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        if field.type is bool:
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=field.default,
                help=field.metadata["help"],
            )
        else:
            parser.add_argument(
                flag,
                type=field.type,
                default=field.default,
                help=field.metadata["help"],
            )
    return parser
