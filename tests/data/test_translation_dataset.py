import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
from corpus_helpers import make_pairs, requires_french_catalogs

import keras_lm
from keras_lm.data import (
    default_bucket_boundaries,
    load_gettext_pairs,
    make_translation_dataset,
    padding_fraction,
)
from keras_lm.tokenizers import SentencePieceTokenizer, train_sentencepiece


def _ids(tokenizer, text):
    return tokenizer.tokenize(text).numpy().tolist()


def _rows(dataset):
    """Unpadded (encoder, decoder, labels, weights) rows of every batch."""
    rows = []
    for inputs, labels, weights in dataset.as_numpy_iterator():
        for enc, dec, lab, w in zip(
            inputs["encoder_token_ids"], inputs["decoder_token_ids"], labels, weights
        ):
            rows.append(
                (
                    tuple(enc[enc != 0]),
                    tuple(dec[dec != 0]),
                    tuple(lab[lab != 0]),
                    w.tolist(),
                    lab.tolist(),
                )
            )
    return rows


def test_contract_bos_eos_and_sample_weight(tokenizer):
    pairs = [("the cat", "le chat"), ("open the file where", "ouvrir le fichier où")]
    dataset = make_translation_dataset(
        pairs, tokenizer, batch_size=2, shuffle=False, bucket_boundaries=()
    )
    inputs, labels, weights = dataset.element_spec
    assert set(inputs) == {"encoder_token_ids", "decoder_token_ids"}
    assert inputs["encoder_token_ids"].dtype == tf.int32
    assert inputs["decoder_token_ids"].dtype == tf.int32
    assert labels.dtype == tf.int32 and weights.dtype == tf.float32
    rows = _rows(dataset)
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    for (source, target), (enc, dec, lab, w, padded_labels) in zip(pairs, rows):
        assert list(enc) == _ids(tokenizer, source) + [eos]
        assert list(dec) == [bos] + _ids(tokenizer, target)
        assert list(lab) == _ids(tokenizer, target) + [eos]
        assert w == [float(label != 0) for label in padded_labels]


def test_truncation_keeps_source_eos_but_no_eos_label_on_a_cut_target(tokenizer):
    pairs = make_pairs(60, seed=3)
    max_length = 6
    truncated = _rows(
        make_translation_dataset(
            pairs,
            tokenizer,
            batch_size=8,
            max_length=max_length,
            shuffle=False,
            bucket_boundaries=(),
        )
    )
    assert len(truncated) == len(pairs)
    eos = tokenizer.eos_id
    cut_targets = 0
    for (_, target), (enc, dec, lab, _, _) in zip(pairs, truncated):
        assert max(len(enc), len(dec), len(lab)) <= max_length
        assert enc[-1] == eos
        target_ids = _ids(tokenizer, target)
        if len(target_ids) < max_length:
            assert list(lab) == target_ids + [eos]
        else:
            # A cut target must not teach the model to stop mid-sentence.
            cut_targets += 1
            assert list(lab) == target_ids[:max_length] and eos not in lab
            assert list(dec) == [tokenizer.bos_id] + target_ids[: max_length - 1]
    assert cut_targets > 0
    fits = [
        pair
        for pair in pairs
        if max(len(_ids(tokenizer, side)) for side in pair) + 1 <= max_length
    ]
    assert 0 < len(fits) < len(pairs)
    filtered = make_translation_dataset(
        pairs, tokenizer, batch_size=8, max_length=max_length, truncate=False
    )
    assert len(_rows(filtered)) == len(fits)


def test_every_pair_appears_once_per_epoch_in_new_order(tokenizer):
    pairs = make_pairs(80, seed=4)
    dataset = make_translation_dataset(pairs, tokenizer, batch_size=8, seed=0)
    first, second = _rows(dataset), _rows(dataset)
    expected = collections.Counter(
        tuple(_ids(tokenizer, source) + [tokenizer.eos_id]) for source, _ in pairs
    )
    assert collections.Counter(row[0] for row in first) == expected
    assert collections.Counter(row[0] for row in second) == expected
    # cache -> shuffle: the cache must not freeze one order for every epoch.
    assert [row[0] for row in first] != [row[0] for row in second]
    again = _rows(make_translation_dataset(pairs, tokenizer, batch_size=8, seed=0))
    assert [row[0] for row in again] == [row[0] for row in first]


def test_static_shapes_are_fully_static(tokenizer):
    pairs = make_pairs(50, seed=5)
    dataset = make_translation_dataset(
        pairs, tokenizer, batch_size=8, max_length=16, static_shapes=True
    )
    for spec in tf.nest.flatten(dataset.element_spec):
        assert spec.shape.is_fully_defined(), spec
        assert spec.shape.as_list() == [8, 16]
    assert sum(1 for _ in dataset) == len(pairs) // 8


def test_bucketing_lowers_padding_on_synthetic_pairs(tokenizer):
    pairs = make_pairs(400, seed=6, max_words=30)
    _check_bucketing_lowers_padding(pairs, tokenizer)


def test_bucketed_batches_take_one_shape_per_bucket(tokenizer):
    # XLA compiles one train step per input shape: a bucket must not produce
    # a new shape for every batch.
    pairs = make_pairs(600, seed=7, max_words=30)
    dataset = make_translation_dataset(
        pairs, tokenizer, batch_size=8, max_length=48, seed=0, drop_remainder=True
    )
    shapes = collections.Counter(
        (inputs["encoder_token_ids"].shape, inputs["decoder_token_ids"].shape)
        for inputs, _, _ in dataset.as_numpy_iterator()
    )
    edges = [b for b in default_bucket_boundaries(48) if b <= 48] + [49]
    allowed = {((8, edge - 1), (8, edge - 1)) for edge in edges}
    assert set(shapes) <= allowed
    assert sum(shapes.values()) > 3 * len(shapes)


@requires_french_catalogs
def test_bucketing_lowers_padding_on_real_gettext_pairs():
    pairs = load_gettext_pairs()[:3000]
    proto = train_sentencepiece(
        [side for pair in pairs for side in pair], vocab_size=400, seed=0
    )
    _check_bucketing_lowers_padding(pairs, SentencePieceTokenizer(proto=proto))


def _check_bucketing_lowers_padding(pairs, tokenizer):
    def fraction(**kwargs):
        dataset = make_translation_dataset(
            pairs, tokenizer, batch_size=16, max_length=64, seed=0, **kwargs
        )
        return padding_fraction(dataset)

    bucketed = fraction()
    longest_in_batch = fraction(bucket_boundaries=())
    to_max_length = fraction(static_shapes=True)
    assert bucketed < longest_in_batch < to_max_length
    assert bucketed < 0.75 * longest_in_batch


def test_empty_strings_do_not_crash(tokenizer):
    dataset = make_translation_dataset(
        [("", ""), ("the cat", "")], tokenizer, batch_size=2, shuffle=False
    )
    rows = _rows(dataset)
    assert rows[0][0] == (tokenizer.eos_id,)
    assert rows[0][1] == (tokenizer.bos_id,) and rows[0][2] == (tokenizer.eos_id,)


def test_feeds_model_fit(tokenizer):
    encoder = keras.Input(shape=(None,), dtype="int32", name="encoder_token_ids")
    decoder = keras.Input(shape=(None,), dtype="int32", name="decoder_token_ids")
    embedding = keras.layers.Embedding(tokenizer.vocabulary_size(), 8)
    context = keras.ops.mean(embedding(encoder), axis=1, keepdims=True)
    logits = keras.layers.Dense(tokenizer.vocabulary_size())(
        embedding(decoder) + context
    )
    model = keras.Model(
        {"encoder_token_ids": encoder, "decoder_token_ids": decoder}, logits
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    dataset = make_translation_dataset(make_pairs(32), tokenizer, batch_size=8)
    history = model.fit(dataset, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])


class _NoPadTokenizer:
    special_ids = keras_lm.SpecialIds(pad_id=None)


@pytest.mark.parametrize(
    "pairs, kwargs, error, message",
    [
        ([], {}, ValueError, "pairs is empty"),
        ([("a", 3)], {}, TypeError, "index 0"),
        ("a\tb", {}, TypeError, "str"),
        ([("a", "b")], {"batch_size": 0}, ValueError, "batch_size=0"),
        ([("a", "b")], {"max_length": 1}, ValueError, "max_length=1"),
        ([("a", "b")], {"bucket_boundaries": [8, 4]}, ValueError, r"\[8, 4\]"),
        (
            [("a", "b")],
            {"static_shapes": True, "drop_remainder": False},
            ValueError,
            "drop_remainder=True",
        ),
        (
            [("a", "b")],
            {"static_shapes": True, "bucket_boundaries": [8]},
            ValueError,
            "bucket_boundaries",
        ),
        ([("a", "b")], {"static_shapes": True}, ValueError, "no full batch"),
    ],
)
def test_bad_arguments_name_the_value(tokenizer, pairs, kwargs, error, message):
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(error, match=message):
        make_translation_dataset(pairs, tokenizer, **kwargs)


def test_tokenizer_without_a_pad_id_is_rejected():
    with pytest.raises(ValueError, match="no pad_id"):
        make_translation_dataset([("a", "b")], _NoPadTokenizer(), batch_size=1)


class _TargetTokenizer(SentencePieceTokenizer):
    """Splits targets differently from sources, as Marian's two models do."""

    def tokenize_target(self, text):
        return self.tokenize(tf.strings.upper(text))


@pytest.mark.parametrize("streamed", [False, True])
def test_targets_use_the_tokenizers_target_split(tokenizer_proto, tmp_path, streamed):
    tokenizer = _TargetTokenizer(proto=tokenizer_proto)
    pairs = [("the cat", "le chat"), ("open the file", "ouvrir le fichier")]
    source = pairs
    if streamed:
        source = str(tmp_path / "pairs.tsv")
        with open(source, "w", encoding="utf-8") as f:
            f.writelines(f"{en}\t{fr}\n" for en, fr in pairs)
    dataset = make_translation_dataset(
        source, tokenizer, batch_size=2, shuffle=False, bucket_boundaries=()
    )
    eos = tokenizer.eos_id
    got = sorted((enc, lab) for enc, _, lab, _, _ in _rows(dataset))
    expected = sorted(
        (
            tuple(_ids(tokenizer, en) + [eos]),
            tuple(tokenizer.tokenize_target(fr).numpy().tolist() + [eos]),
        )
        for en, fr in pairs
    )
    # The two splits differ, so the check above can tell them apart.
    assert tokenizer.tokenize_target("le chat").numpy().tolist() != _ids(
        tokenizer, "le chat"
    )
    assert got == expected
