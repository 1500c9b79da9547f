import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_lm.data import load_tfds_pairs


def _wmt_examples(self, split, **kwargs):
    """Three wmt14-style examples whose text says which language it is."""
    return tf.data.Dataset.from_tensor_slices(
        {
            "en": [f"english {i}" for i in range(3)],
            "fr": [f"français {i}" for i in range(3)],
        }
    )


def _ted_examples(self, split, **kwargs):
    """TED talks with languages in varied order; the second lacks French."""
    talks = [
        (["de", "fr", "en"], ["deutsch 0", "français 0", "english 0"]),
        (["en", "es"], ["english 1", "español 1"]),
        (["fr", "en"], ["français 2", "english 2"]),
    ]

    def generate():
        for index, (languages, texts) in enumerate(talks):
            yield {
                "translations": {
                    "language": np.array(languages, dtype=object),
                    "translation": np.array(texts, dtype=object),
                },
                "talk_name": f"talk {index}",
            }

    string = tf.TensorSpec([], tf.string)
    strings = tf.TensorSpec([None], tf.string)
    return tf.data.Dataset.from_generator(
        generate,
        output_signature={
            "translations": {"language": strings, "translation": strings},
            "talk_name": string,
        },
    )


def test_wmt14_pairs_come_out_english_first():
    with tfds.testing.mock_data(as_dataset_fn=_wmt_examples):
        pairs = load_tfds_pairs("wmt14_translate/fr-en", split="train")
    assert pairs == [(f"english {i}", f"français {i}") for i in range(3)]


def test_wmt14_reverse_direction_and_max_examples():
    with tfds.testing.mock_data(as_dataset_fn=_wmt_examples):
        pairs = load_tfds_pairs(
            "wmt14_translate/fr-en",
            max_examples=2,
            source_language="fr",
            target_language="en",
        )
    assert pairs == [("français 0", "english 0"), ("français 1", "english 1")]


def test_ted_multi_picks_english_and_french_by_language_code():
    with tfds.testing.mock_data(as_dataset_fn=_ted_examples):
        pairs, report = load_tfds_pairs(
            "ted_multi_translate", split="validation", return_report=True
        )
    assert pairs == [("english 0", "français 0"), ("english 2", "français 2")]
    assert report.skipped == {"missing_language": 1}


def test_default_random_mock_reads_real_feature_layout():
    with tfds.testing.mock_data(num_examples=4):
        pairs = load_tfds_pairs("wmt14_translate/fr-en", split="test")
    assert len(pairs) == 4
    assert all(isinstance(a, str) and isinstance(b, str) for a, b in pairs)


def test_unknown_language_names_features():
    with tfds.testing.mock_data(as_dataset_fn=_wmt_examples):
        with pytest.raises(ValueError, match=r"\['en', 'fr'\].*'de'"):
            load_tfds_pairs("wmt14_translate/fr-en", target_language="de")


def test_bad_max_examples():
    with pytest.raises(ValueError, match="max_examples=0"):
        load_tfds_pairs(max_examples=0)


def test_streamed_tfds_picks_languages_by_name_in_graph():
    from keras_lm.data import tfds_text

    with tfds.testing.mock_data(as_dataset_fn=_wmt_examples):
        pairs = tfds_text("wmt14_translate/fr-en", split="train")
        with pytest.raises(ValueError, match="no feature 'text'"):
            tfds_text("wmt14_translate/fr-en", text_feature="text")
    assert [(s.decode(), t.decode()) for s, t in pairs.as_numpy_iterator()] == [
        (f"english {i}", f"français {i}") for i in range(3)
    ]
    with tfds.testing.mock_data(as_dataset_fn=_ted_examples):
        pairs = tfds_text("ted_multi_translate", split="validation")
    assert [(s.decode(), t.decode()) for s, t in pairs.as_numpy_iterator()] == [
        ("english 0", "français 0"),
        ("english 2", "français 2"),
    ]
