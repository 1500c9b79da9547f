"""A local lm-eval multiple-choice task (YAML over JSONL in a temporary
directory) and the harness runs the adapter tests compare.

lm-eval, transformers and torch are test-only dependencies: callers
`pytest.importorskip` them first. Nothing downloads: the dataset is a local
JSON file and the models are built in the test's directory.
"""

import json
import random

from tests.data.corpus_helpers import make_pairs

TASK_NAME = "keras_lm_local_choice"


def choice_items(count, seed=0, num_choices=4):
    """Items whose context is an English phrase and whose choices are French
    phrases (the right one is its translation)."""
    rng = random.Random(seed)
    pairs = make_pairs(count + num_choices, seed=seed + 11, max_words=5)
    items = []
    for index in range(count):
        english, french = pairs[index]
        wrong = rng.sample([p[1] for p in pairs if p[1] != french], num_choices - 1)
        answer = rng.randrange(num_choices)
        choices = wrong[:answer] + [french] + wrong[answer:]
        items.append({"context": english, "choices": choices, "answer": answer})
    return items


def write_task(directory, items):
    """`directory/<TASK_NAME>.yaml` over `directory/items.jsonl`; returns
    the directory (a TaskManager include_path)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "items.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in items))
    (directory / f"{TASK_NAME}.yaml").write_text(
        f"""task: {TASK_NAME}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "English: {{{{context}}}}\\nFrench:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
    )
    return directory


def evaluate(model, model_args, include_path, **options):
    """`lm_eval.simple_evaluate` on the local task, samples logged."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(include_path), include_defaults=False)
    return lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=[TASK_NAME],
        task_manager=manager,
        log_samples=True,
        bootstrap_iters=0,
        **options,
    )
