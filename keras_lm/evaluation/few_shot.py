"""Few-shot prompts: an instruction, k solved examples, then the query."""

import string

import numpy as np


def few_shot_prompt(
    examples,
    query,
    *,
    template,
    target_template="",
    num_shots=0,
    separator="\n\n",
    instruction="",
    seed=0,
):
    """The prompt text for `query` after `num_shots` examples drawn from a pool.

    Each shot is `template` then `target_template`, filled from an example's
    fields; the query gets `template` only, so the model's continuation is
    its answer. Shots are drawn without replacement by a NumPy generator
    seeded with `seed` (the same seed, the same shots), never the query
    itself, and joined by `separator` (after `instruction`, if given).

    Args:
        examples: the pool, a list of dicts of fields.
        query: a dict of fields.
        template: text with `{field}` placeholders, e.g. `"Q: {question}\\nA:"`.
        target_template: the solved part, e.g. `" {answer}"`.
        num_shots: k, how many examples to show (0: the query alone).
        separator: between the instruction, the shots and the query.
        instruction: text before everything, or "".
        seed: int seed of the draw.

    Returns:
        The prompt string.

    Raises:
        ValueError: a placeholder naming a field an example lacks (the field
            and the example are named), or more shots than the pool holds.

    Example:
    >>> pool = [{"word": "cat", "french": "chat"}, {"word": "dog", "french": "chien"}]
    >>> few_shot_prompt(pool, {"word": "house"}, template="{word} ->",
    ...                 target_template=" {french}", num_shots=1, separator="\\n")
    'dog -> chien\\nhouse ->'
    """
    integer = isinstance(num_shots, (int, np.integer))
    if isinstance(num_shots, bool) or not integer or num_shots < 0:
        raise ValueError(
            "num_shots must be a non-negative integer. "
            f"Received: num_shots={num_shots!r}"
        )
    input_fields = _fields("template", template)
    target_fields = _fields("target_template", target_template)
    pool = [example for example in examples if not _same(example, query)]
    if num_shots > len(pool):
        raise ValueError(
            f"num_shots={num_shots} is more than the {len(pool)} examples in the "
            "pool (the query left out)."
        )
    chosen = np.random.default_rng(seed).choice(len(pool), num_shots, replace=False)
    parts = [instruction] if instruction else []
    for index in chosen:
        example = pool[int(index)]
        parts.append(
            _fill("template", template, input_fields, example)
            + _fill("target_template", target_template, target_fields, example)
        )
    parts.append(_fill("template", template, input_fields, query, what="query"))
    return separator.join(parts)


def _fields(name, template):
    if not isinstance(template, str):
        raise ValueError(f"{name} must be a string. Received: {name}={template!r}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(
            f"{name}={template!r} is not a valid template: {error}"
        ) from None
    fields = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(
                f"{name} placeholders must name a field, like {{answer}}. "
                f"Received: {{{field}}} in {name}={template!r}"
            )
        fields.append(field)
    return fields


def _fill(name, template, fields, values, what="example"):
    if not isinstance(values, dict):
        raise ValueError(f"Each {what} must be a dict of fields. Received: {values!r}")
    missing = [field for field in fields if field not in values]
    if missing:
        raise ValueError(
            f"{name} uses the field {missing[0]!r}, which the {what} {values!r} "
            f"does not have. Its fields are {sorted(values)}."
        )
    return template.format(**{field: values[field] for field in fields})


def _same(example, query):
    return example is query or example == query
