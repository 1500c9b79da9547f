"""The lm-eval model "keras_lm" against the harness's own `hf` backend on the
same random-init tiny GPT-2, on a local task; nothing downloads."""

import json
import os
import subprocess
import sys

# Before `datasets` (imported by lm-eval) reads them.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402

import keras_lm  # noqa: E402
from keras_lm.evaluation import lm_eval_adapter  # noqa: E402
from keras_lm.evaluation.lm_eval_adapter import KerasLM  # noqa: E402
from tests.data.corpus_helpers import make_pairs  # noqa: E402
from tests.evaluation import lm_eval_helpers  # noqa: E402
from tests.evaluation.text_helpers import tiny_model, tiny_tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N_POSITIONS = 40  # short, so some requests are cut from the left
ITEMS = 60


def needs_hf_backend():
    """lm-eval's `hf` backend needs torch, transformers and accelerate."""
    for name in ("torch", "transformers", "tokenizers", "accelerate"):
        pytest.importorskip(name)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from tests.convert.gpt2_helpers import save_tiny_gpt2

    directory = tmp_path_factory.mktemp("gpt2")
    save_tiny_gpt2(directory, n_positions=N_POSITIONS)
    return directory


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    items = lm_eval_helpers.choice_items(ITEMS)
    return lm_eval_helpers.write_task(tmp_path_factory.mktemp("task"), items)


def requests(kind, arguments):
    return [Instance(kind, {}, args, i) for i, args in enumerate(arguments)]


def hf_backend(gpt2_dir):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(gpt2_dir), device="cpu", dtype="float32", batch_size=8)


def sample_scores(results):
    samples = results["samples"][lm_eval_helpers.TASK_NAME]
    samples = sorted(samples, key=lambda sample: sample["doc_id"])
    scores = np.array([[r[0][0] for r in s["resps"]] for s in samples])
    greedy = np.array([[r[0][1] for r in s["resps"]] for s in samples])
    return scores, greedy


@pytest.mark.slow
def test_loglikelihoods_and_accuracy_match_the_hf_backend(gpt2_dir, task_dir):
    needs_hf_backend()
    # By name, as the command line does: importing the adapter registered it.
    ours = lm_eval_helpers.evaluate(
        "keras_lm", {"pretrained": str(gpt2_dir)}, task_dir, batch_size=16
    )
    theirs = lm_eval_helpers.evaluate(
        "hf",
        {"pretrained": str(gpt2_dir), "dtype": "float32", "device": "cpu"},
        task_dir,
        batch_size=16,
    )
    our_scores, our_greedy = sample_scores(ours)
    their_scores, their_greedy = sample_scores(theirs)
    assert our_scores.shape == (ITEMS, 4)
    np.testing.assert_allclose(our_scores, their_scores, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(our_greedy, their_greedy)
    task = lm_eval_helpers.TASK_NAME
    for metric in ("acc,none", "acc_norm,none"):
        assert ours["results"][task][metric] == theirs["results"][task][metric]


@pytest.mark.slow
def test_rolling_loglikelihood_and_generation_match_the_hf_backend(gpt2_dir):
    needs_hf_backend()
    theirs = hf_backend(gpt2_dir)
    ours = KerasLM(pretrained=str(gpt2_dir), batch_size=8)
    texts = [side for pair in make_pairs(6, seed=5) for side in pair] + [
        " ".join(p[0] for p in make_pairs(12, seed=6))
    ]
    assert len(ours.tok_encode(texts[-1])) > 2 * N_POSITIONS  # several windows
    rolling = requests("loglikelihood_rolling", [(t,) for t in texts])
    np.testing.assert_allclose(
        ours.loglikelihood_rolling(rolling),
        theirs.loglikelihood_rolling(rolling),
        # The hf backend sums each window's ~40 token scores in float32.
        rtol=1e-6,
        atol=1e-4,
    )
    options = {"until": ["chat", "\n"], "max_gen_toks": 8, "do_sample": False}
    generation = requests("generate_until", [(t, options) for t in texts[:6]])
    generated = ours.generate_until(generation)
    assert any(generated)
    assert generated == theirs.generate_until(generation)


def test_rolling_windows_are_lm_evals_when_the_stride_is_the_window():
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

    from keras_lm.evaluation import rolling_windows

    for length in range(1, 30):
        tokens = list(range(10, 10 + length))
        theirs = [
            make_disjoint_window(window)
            for window in get_rolling_token_windows(tokens, 7, 8, 1)
        ]
        assert rolling_windows(tokens, 7, window=8, stride=8) == theirs


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A `.keras` TransformerLM and its SentencePiece `.model` file."""
    directory = tmp_path_factory.mktemp("saved")
    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer)
    model.save(directory / "lm.keras")
    (directory / "spm.model").write_bytes(tokenizer.proto)
    return directory / "lm.keras", directory / "spm.model"


def test_a_saved_model_scores_as_the_library_does(saved_model):
    path, spm = saved_model
    lm = KerasLM(pretrained=str(path), tokenizer=str(spm))
    assert lm.add_bos_token  # keras_lm's convention for its own models
    pairs = [("the cat", " is open"), ("", "window"), ("save the ", "file")]
    got = lm.loglikelihood(requests("loglikelihood", pairs))
    expected = keras_lm.evaluation.loglikelihood(lm.model, lm.tokenizer, pairs)
    np.testing.assert_allclose(
        [g[0] for g in got], [e[0] for e in expected], rtol=0, atol=1e-5
    )
    assert [g[1] for g in got] == [e[1] for e in expected]


def test_bad_model_args_and_tasks_are_named(saved_model, tmp_path):
    path, spm = saved_model
    with pytest.raises(ValueError, match=r"pretrained='.*lm.keras' has no tokenizer"):
        KerasLM(pretrained=str(path))
    with pytest.raises(ValueError, match=r"pretrained='.*nothing.bin' is neither"):
        KerasLM(pretrained=str(tmp_path / "nothing.bin"), tokenizer=str(spm))
    with pytest.raises(ValueError, match=r"tokenizer='.*' is neither"):
        KerasLM(pretrained=str(path), tokenizer=str(tmp_path))
    with pytest.raises(
        ValueError, match=r"Unknown keras_lm model_args \['temprature'\]"
    ):
        KerasLM(pretrained=str(path), tokenizer=str(spm), temprature=0)
    with pytest.raises(ValueError, match=r"batch_size.*Received: 'big'"):
        KerasLM(pretrained=str(path), tokenizer=str(spm), batch_size="big")
    lm = KerasLM(pretrained=str(path), tokenizer=str(spm))
    with pytest.raises(ValueError, match=r"Unknown lm-eval task 'no_such_task'"):
        lm_eval_adapter.evaluate(
            lm, ["no_such_task"], include_path=str(tmp_path), include_defaults=False
        )
    sampling = {"until": ["\n"], "do_sample": True, "temperature": 0.7}
    with pytest.raises(ValueError, match=r"do_sample=True, temperature=0.7"):
        lm.generate_until(requests("generate_until", [("the cat", sampling)]))


@pytest.mark.slow
def test_the_command_line_runs_a_task_with_the_keras_lm_model(
    gpt2_dir, task_dir, tmp_path
):
    output = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "keras_lm.evaluation.lm_eval_adapter",
        "--model",
        "keras_lm",
        "--model_args",
        f"pretrained={gpt2_dir}",
        "--tasks",
        lm_eval_helpers.TASK_NAME,
        "--include_path",
        str(task_dir),
        "--limit",
        "4",
        "--output_path",
        str(output),
    ]
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    environment = dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    (written,) = list(output.rglob("results*.json"))
    results = json.loads(written.read_text())["results"][lm_eval_helpers.TASK_NAME]
    assert 0.0 <= results["acc,none"] <= 1.0
