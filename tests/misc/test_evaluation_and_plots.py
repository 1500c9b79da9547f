import numpy as np
import pytest

from keras_lm import evaluation, visualize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_scores_perfect_and_poor_translations():
    perfect = evaluation.score_translations(["le chat est noir"], ["le chat est noir"])
    assert perfect["bleu"] == pytest.approx(100.0)
    assert perfect["chrf"] == pytest.approx(100.0)
    poor = evaluation.score_translations([b"un chien"], ["le chat est noir"])
    assert poor["bleu"] < 10.0 and poor["chrf"] < perfect["chrf"]
    assert perfect["sentences"] == 1


def test_score_refuses_mismatched_lengths_and_empty():
    with pytest.raises(ValueError, match="1 hypotheses, 2 references"):
        evaluation.score_translations(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="Nothing to score"):
        evaluation.score_translations([], [])


def test_plots_are_valid_png(tmp_path):
    curves = visualize.plot_loss_curves(
        {
            "loss": [3.0, 2.0, 1.5],
            "val_loss": [3.1, 2.2, 1.9],
            "accuracy": [0.1, 0.2, 0.3],
        },
        str(tmp_path / "loss.png"),
    )
    scores = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3))
    heat = visualize.plot_attention(
        scores, ["a", "b", "c", "d"], ["x", "y", "z"], str(tmp_path / "sub" / "att.png")
    )
    for path in (curves, heat):
        with open(path, "rb") as f:
            assert f.read(8) == PNG_MAGIC


def test_plot_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="No loss values"):
        visualize.plot_loss_curves({"accuracy": [0.1]}, str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        visualize.plot_attention(np.ones((2, 2)), ["a"], ["b"], str(tmp_path / "y.png"))
