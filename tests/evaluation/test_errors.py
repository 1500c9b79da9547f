"""Bad input to keras_lm.evaluation: clear errors naming the value."""

import pytest

from keras_lm.evaluation import (
    few_shot_prompt,
    generate_until,
    loglikelihood,
    loglikelihood_ids,
    multiple_choice,
    rolling_loglikelihood,
)
from tests.evaluation.text_helpers import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture
def model(tokenizer):
    return tiny_model(tokenizer)


def test_an_empty_continuation_is_refused(model, tokenizer):
    with pytest.raises(ValueError, match=r"Request 1 has an empty continuation"):
        loglikelihood_ids(model, [([2], [5]), ([2, 7], [])])
    with pytest.raises(ValueError, match=r"empty continuation.*'the cat'"):
        loglikelihood(model, tokenizer, [("the cat", "")])
    with pytest.raises(ValueError, match=r"choice 1 is empty"):
        multiple_choice(
            model, tokenizer, [{"context": "a", "choices": ["cat", ""], "answer": 0}]
        )


def test_a_context_with_no_tokens_is_refused(model, tokenizer):
    with pytest.raises(ValueError, match=r"Request 0 has a context with no tokens"):
        loglikelihood_ids(model, [([], [5, 6])])
    with pytest.raises(ValueError, match=r"context '' has no tokens"):
        loglikelihood(model, tokenizer, [("", "cat")], add_start_token=False)
    with pytest.raises(ValueError, match=r"Context 0 \(''\) has no tokens"):
        generate_until(model, tokenizer, [""], add_start_token=False, max_new_tokens=4)


def test_ids_outside_the_vocabulary_or_a_continuation_longer_than_the_window(
    model,
):
    with pytest.raises(ValueError, match=r"request token ids"):
        loglikelihood_ids(model, [([2], [model.vocabulary_size])])
    with pytest.raises(ValueError, match=r"continuation of 9 ids.*max_length=8"):
        loglikelihood_ids(model, [([2], [5] * 9)], max_length=8)
    with pytest.raises(ValueError, match=r"max_length=64.*max_sequence_length=32"):
        loglikelihood_ids(model, [([2], [5])], max_length=64)
    with pytest.raises(ValueError, match=r"stride=9"):
        rolling_loglikelihood(model, None, [[5, 6]], stride=9, max_length=8)


def test_a_model_without_a_tokenizer_is_refused_naming_what_is_missing(model):
    for call in (
        lambda: loglikelihood(model, None, [("a", " b")]),
        lambda: multiple_choice(
            model, None, [{"context": "a", "choices": ["b"], "answer": 0}]
        ),
        lambda: generate_until(model, None, ["a"]),
    ):
        with pytest.raises(ValueError, match=r"tokenizer=None"):
            call()
    with pytest.raises(ValueError, match=r"tokenizer=None"):
        rolling_loglikelihood(model, None, ["a text"])


def test_a_tokenizer_that_disagrees_with_the_model_is_refused(tokenizer):
    from keras_lm.models import TransformerLM

    other = TransformerLM(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
        special_ids={"pad_id": 0, "unk_id": 1, "bos_id": 3, "eos_id": 2},
    )
    with pytest.raises(
        ValueError, match=r"disagree on \['eos_id', 'start_id', 'text_start_id'\]"
    ):
        loglikelihood(other, tokenizer, [("a", " b")])


def test_bad_multiple_choice_items_are_named(model, tokenizer):
    with pytest.raises(ValueError, match=r"Item 0 lacks \['answer'\]"):
        multiple_choice(model, tokenizer, [{"context": "a", "choices": ["b"]}])
    with pytest.raises(ValueError, match=r"Item 1: answer=2 is not a choice index"):
        multiple_choice(
            model,
            tokenizer,
            [
                {"context": "a", "choices": ["b", "c"], "answer": 0},
                {"context": "a", "choices": ["b", "c"], "answer": 2},
            ],
        )


def test_an_unknown_template_field_is_named():
    pool = [{"word": "cat", "french": "chat"}, {"word": "dog", "french": "chien"}]
    with pytest.raises(ValueError, match=r"field 'answer'.*fields are \['french'"):
        few_shot_prompt(
            pool,
            {"word": "house"},
            template="{word} ->",
            target_template=" {answer}",
            num_shots=1,
        )
    with pytest.raises(ValueError, match=r"field 'word'.*query"):
        few_shot_prompt(pool, {"mot": "maison"}, template="{word} ->", num_shots=0)
    with pytest.raises(ValueError, match=r"placeholders must name a field.*\{0\}"):
        few_shot_prompt(pool, pool[0], template="{0} ->")
    with pytest.raises(ValueError, match=r"num_shots=3 is more than the 1 examples"):
        few_shot_prompt(pool, pool[0], template="{word}", num_shots=3)
    with pytest.raises(ValueError, match=r"num_shots=-1"):
        few_shot_prompt(pool, pool[0], template="{word}", num_shots=-1)


def test_bad_stop_strings_are_named(model, tokenizer):
    with pytest.raises(ValueError, match=r"until=\['\\n', ''\]"):
        generate_until(model, tokenizer, ["a"], until=["\n", ""])
    with pytest.raises(ValueError, match=r"max_new_tokens=32 leaves no room"):
        generate_until(model, tokenizer, ["a"], max_new_tokens=32)
