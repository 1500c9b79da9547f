"""Corpora readers and tf.data pipelines for translation and language models."""

from keras_lm.data.gettext_corpus import load_gettext_pairs
from keras_lm.data.lm_dataset import PackingReport, make_lm_dataset
from keras_lm.data.prepare import prepare_shards
from keras_lm.data.report import CorpusReport
from keras_lm.data.sampling import sample_texts
from keras_lm.data.shards import load_manifest, verify_shards
from keras_lm.data.splits import split_pairs
from keras_lm.data.stats import padding_fraction
from keras_lm.data.tfds_corpora import load_tfds_pairs, tfds_text
from keras_lm.data.token_batching import token_batch_shapes
from keras_lm.data.translation_dataset import (
    default_bucket_boundaries,
    make_translation_dataset,
)
from keras_lm.data.tsv_corpus import load_tsv_pairs

__all__ = [
    "CorpusReport",
    "PackingReport",
    "default_bucket_boundaries",
    "load_gettext_pairs",
    "load_manifest",
    "load_tfds_pairs",
    "load_tsv_pairs",
    "make_lm_dataset",
    "make_translation_dataset",
    "padding_fraction",
    "prepare_shards",
    "sample_texts",
    "split_pairs",
    "tfds_text",
    "token_batch_shapes",
    "verify_shards",
]
