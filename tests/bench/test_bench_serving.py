"""Smoke test of bench.bench_serving on a random tiny model and a TSV corpus.

Every engine runs (keras_lm in process, both SavedModel signatures,
transformers, CTranslate2 float32 and int8) on a few held-out sentences, so a
broken conversion, export or engine fails here, not in a long benchmark run.
Output is read with capfd (SentencePiece needs a real stderr).
"""

import json

import pytest

import keras_lm
from tests.data.corpus_helpers import make_pairs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import keras

    pytest.importorskip("ctranslate2")
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("serving_bench")
    pairs = make_pairs(400, seed=5, max_words=8)
    with open(root / "pairs.tsv", "w") as f:
        f.writelines(f"{en}\t{fr}\n" for en, fr in pairs)
    keras_lm.tokenizers.train_sentencepiece(
        [side for pair in pairs for side in pair],
        vocab_size=60,
        output_prefix=str(root / "spm_en_fr"),
    )
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(
        str(root / "spm_en_fr.model")
    )
    keras.utils.set_random_seed(0)
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=40,
    )
    model.save(str(root / "model.keras"))
    return root


def test_every_engine_translates_and_the_ratios_are_reported(model_dir, capfd):
    from bench import bench_serving

    record = bench_serving.main(
        [
            f"--model-dir={model_dir}",
            f"--dataset=tsv:{model_dir / 'pairs.tsv'}",
            "--sentences=4",
            "--batch-size=4",
            "--num-beams=2",
            "--max-source-length=16",
        ]
    )
    lines = [line for line in capfd.readouterr().out.splitlines() if line]
    assert json.loads(lines[-1]) == json.loads(json.dumps(record))
    engines = {
        "keras_lm_in_process",
        "keras_lm_int8",
        "savedmodel_translate_xla",
        "savedmodel_serving_default",
        "transformers",
        "ctranslate2_float32",
        "ctranslate2_int8",
    }
    assert set(record["results"]) == engines
    assert record["config"]["sentences"] == 4
    for name, result in record["results"].items():
        assert result["seconds"] > 0, name
        assert result["target_tokens_per_s"] >= 0, name
    # The export decodes what the in-process path decodes.
    in_process = record["results"]["keras_lm_in_process"]
    for name in ("savedmodel_translate_xla", "savedmodel_serving_default"):
        assert record["results"][name]["target_tokens"] == in_process["target_tokens"]
    assert set(record["ratios"]) >= {
        "fastest_over_transformers",
        "fastest_over_ctranslate2_float32",
        "savedmodel_translate_xla_over_in_process",
        "keras_lm_int8_over_ctranslate2_int8",
    }
    # int8 is compared with int8, never counted as keras_lm's fastest.
    assert record["ratios"]["keras_lm_fastest"] != "keras_lm_int8"
    assert record["size_bytes"]["keras_lm_int8"] > 0


def test_bad_sentence_count_is_refused(model_dir):
    from bench import bench_serving

    with pytest.raises(SystemExit):
        bench_serving.main([f"--model-dir={model_dir}", "--sentences=0"])


def test_unknown_engine_is_refused(model_dir, capsys):
    from bench import bench_serving

    with pytest.raises(SystemExit):
        bench_serving.main([f"--model-dir={model_dir}", "--engines=keras_lm,ct3"])
    assert "ct3" in capsys.readouterr().err
