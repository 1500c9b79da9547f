"""Text-level evaluation: how text becomes requests, multiple choice,
generation until stop strings, few-shot prompts."""

import numpy as np
import pytest

from keras_lm.evaluation import (
    few_shot_prompt,
    generate_until,
    loglikelihood,
    loglikelihood_ids,
    multiple_choice,
    perplexity,
    rolling_loglikelihood,
)
from keras_lm.generation import encode_prompts
from tests.evaluation.text_helpers import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def ids(tokenizer, text):
    return tokenizer.tokenize([text]).to_list()[0]


@pytest.mark.slow
def test_a_context_starts_with_text_start_and_its_trailing_space_moves(tokenizer):
    model = tiny_model(tokenizer)
    start = tokenizer.special_ids.text_start_id
    results = loglikelihood(
        model,
        tokenizer,
        [("open the ", "folder"), ("open the", " folder"), ("", "window")],
    )
    assert results[0] == results[1]
    context = ids(tokenizer, "open the")
    whole = ids(tokenizer, "open the folder")
    assert whole[: len(context)] == context
    expected = loglikelihood_ids(
        model,
        [
            ([start] + context, whole[len(context) :]),
            ([start], ids(tokenizer, "window")),
        ],
    )
    np.testing.assert_allclose(results[1][0], expected[0][0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(results[2][0], expected[1][0], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_multiple_choice_picks_the_most_likely_choice_raw_and_per_character(
    tokenizer,
):
    model = tiny_model(tokenizer)
    contexts = ["open the", "the cat", "save where"]
    choices = ["file", "window already", "cat", "mot de passe"]
    scored = [
        [
            logprob
            for logprob, _ in loglikelihood(
                model, tokenizer, [(c, " " + choice) for choice in choices]
            )
        ]
        for c in contexts
    ]
    best = [int(np.argmax(s)) for s in scored]
    per_character = [
        int(np.argmax(np.array(s) / [len(choice) for choice in choices]))
        for s in scored
    ]
    items = [
        {"context": c, "choices": choices, "answer": a} for c, a in zip(contexts, best)
    ]
    result = multiple_choice(model, tokenizer, items)
    assert result["acc"] == 1.0
    assert result["predictions"] == best
    assert result["predictions_norm"] == per_character
    assert result["acc_norm"] == np.mean(np.array(per_character) == best)
    np.testing.assert_allclose(result["loglikelihoods"], scored, rtol=0, atol=1e-5)
    worst = [dict(item, answer=int(np.argmin(s))) for item, s in zip(items, scored)]
    assert multiple_choice(model, tokenizer, worst)["acc"] == 0.0


@pytest.mark.slow
def test_generate_until_cuts_plain_generate_output_at_the_first_stop(tokenizer):
    model = tiny_model(tokenizer)
    contexts = ["the cat", "open the folder", "password"]
    max_new = 10
    # Without XLA here (compiling one decoding loop per shape is slow on
    # CPU); generation tests check that XLA decodes the same ids.
    fast = {"max_new_tokens": max_new, "jit_compile": False}
    plain = []
    for context in contexts:  # one prompt at a time: no padding
        prompt = encode_prompts(tokenizer, [context])
        row = model.generate(prompt, method="greedy", **fast)[0]
        text = tokenizer.detokenize(row).numpy().decode("utf-8")
        assert text.startswith(context)
        plain.append(text[len(context) :])
    assert generate_until(model, tokenizer, contexts, **fast) == plain
    # Stop strings taken from inside the plain outputs.
    stops = [plain[0][3:5], plain[1][2:4]]
    expected = []
    for text in plain:
        ends = [text.find(stop) for stop in stops if stop in text]
        expected.append(text[: min(ends)] if ends else text)
    assert expected[0] == plain[0][: plain[0].find(stops[0])]
    cut = generate_until(
        model, tokenizer, contexts + ["the"], until=stops + ["#"], batch_size=2, **fast
    )
    assert cut[:3] == expected


def test_perplexity_of_text_is_that_of_its_ids(tokenizer):
    model = tiny_model(tokenizer, max_sequence_length=16)
    documents = ["the cat cannot open the folder where the server", "error"]
    result = perplexity(model, tokenizer, documents, stride=5)
    token_lists = [ids(tokenizer, d) for d in documents]
    totals = rolling_loglikelihood(model, None, token_lists, stride=5)
    assert result["tokens"] == sum(map(len, token_lists))
    np.testing.assert_allclose(result["loglikelihood"], sum(totals), atol=1e-5)
    np.testing.assert_allclose(
        result["perplexity"], np.exp(-sum(totals) / result["tokens"]), rtol=1e-9
    )


POOL = [{"word": w, "french": f} for w, f in [("cat", "chat"), ("dog", "chien")]] + [
    {"word": f"w{i}", "french": f"f{i}"} for i in range(8)
]


def test_few_shot_prompt_layout():
    prompt = few_shot_prompt(
        POOL[:2],
        {"word": "house"},
        template="{word} ->",
        target_template=" {french}",
        num_shots=2,
        separator="\n",
        instruction="Translate.",
        seed=0,
    )
    lines = prompt.split("\n")
    assert lines[0] == "Translate."
    assert sorted(lines[1:3]) == ["cat -> chat", "dog -> chien"]
    assert lines[3] == "house ->"


def test_few_shot_examples_are_seeded_and_never_the_query():
    query = POOL[4]

    def shots(seed, k=3):
        prompt = few_shot_prompt(
            POOL,
            query,
            template="{word} ->",
            target_template=" {french}",
            num_shots=k,
            seed=seed,
        )
        return prompt.split("\n\n")

    assert shots(1) == shots(1)
    drawn = {tuple(shots(seed)[:-1]) for seed in range(10)}
    assert len(drawn) > 1
    for seed in range(10):
        parts = shots(seed, k=len(POOL) - 1)  # every example but the query
        assert "w2 -> f2" not in parts
        assert len(set(parts[:-1])) == len(POOL) - 1
        assert parts[-1] == "w2 ->"
    assert shots(0, k=0) == ["w2 ->"]


@pytest.mark.slow
def test_importing_evaluation_imports_neither_lm_eval_nor_transformers():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys, keras_lm.evaluation as e; e.loglikelihood_ids; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'lm_eval', 'transformers', 'torch', 'datasets'}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "[]"
