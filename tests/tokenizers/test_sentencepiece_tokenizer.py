import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lm.tokenizers import SentencePieceTokenizer, check_vocabulary_matches

TEXTS = [
    "the cat sleeps on the warm mat",
    "l'élève a mangé une crème brûlée à côté du château",
    "où êtes-vous ? garçon, ça suffit !",
]


def test_round_trips_ascii_and_accented_french(tokenizer):
    ids = tokenizer(TEXTS)
    assert isinstance(ids, tf.RaggedTensor)
    assert ids.dtype == tf.int32
    text = [t.decode("utf-8") for t in tokenizer.detokenize(ids).numpy()]
    assert text == TEXTS
    assert tokenizer.unk_id not in ids.flat_values.numpy()


def test_scalar_input_gives_dense_ids_and_scalar_text(tokenizer):
    ids = tokenizer.tokenize("le chat dort")
    assert isinstance(ids, tf.Tensor) and ids.shape.rank == 1
    assert tokenizer.detokenize(ids).numpy().decode() == "le chat dort"


def test_tokenizes_in_graph(tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(text):
        return tokenizer.detokenize(tokenizer.tokenize(text))

    assert round_trip(tf.constant(TEXTS)).numpy().tolist() == [
        t.encode() for t in TEXTS
    ]


def test_empty_string_and_non_utf8_do_not_crash(tokenizer):
    ids = tokenizer(tf.constant([b"", b"\xff\xfe\xfa broken", b"chat"]))
    rows = ids.to_list()
    assert rows[0] == []
    assert tokenizer.unk_id in rows[1]
    assert tokenizer.detokenize(ids).numpy()[2] == b"chat"


def test_special_ids_and_vocabulary(tokenizer):
    assert (tokenizer.pad_id, tokenizer.unk_id) == (0, 1)
    assert (tokenizer.bos_id, tokenizer.eos_id) == (2, 3)
    assert tokenizer.vocabulary_size() == 100
    piece = tokenizer.id_to_token(10)
    assert tokenizer.token_to_id(piece) == 10
    with pytest.raises(ValueError, match="token_id=100"):
        tokenizer.id_to_token(100)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer.token_to_id("definitely-not-a-piece")


def test_detokenize_drops_pad_and_bos_and_stops_at_eos(tokenizer):
    chat = tokenizer.tokenize("le chat").numpy().tolist()
    dort = tokenizer.tokenize("dort").numpy().tolist()
    bos, eos = tokenizer.bos_id, tokenizer.eos_id
    rows = [[bos, *chat, eos, *dort], [bos, *dort]]
    width = max(len(row) for row in rows) + 2
    ids = np.array([row + [0] * (width - len(row)) for row in rows])
    text = tokenizer.detokenize(ids).numpy().tolist()
    assert text == [b"le chat", b"dort"]
    ragged = tf.ragged.constant([[bos, *chat], [*dort, eos, *chat]])
    assert tokenizer.detokenize(ragged).numpy().tolist() == [b"le chat", b"dort"]
    assert tokenizer.detokenize(tf.constant(chat, tf.int64)).numpy() == b"le chat"


def test_constructs_from_model_file(tmp_path, proto):
    path = tmp_path / "sp.model"
    path.write_bytes(proto)
    from_file = SentencePieceTokenizer(proto=str(path))
    assert from_file.proto == proto
    with pytest.raises(FileNotFoundError, match="missing.model"):
        SentencePieceTokenizer(proto=str(tmp_path / "missing.model"))
    with pytest.raises(TypeError, match="int"):
        SentencePieceTokenizer(proto=3)


def test_config_round_trip(tokenizer):
    config = tokenizer.get_config()
    assert isinstance(config["proto"], str)
    restored = SentencePieceTokenizer.from_config(config)
    assert restored.proto == tokenizer.proto
    assert restored.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(tokenizer)
    )
    assert isinstance(revived, SentencePieceTokenizer)
    assert revived(TEXTS).to_list() == tokenizer(TEXTS).to_list()


@keras.saving.register_keras_serializable(package="keras_lm_tests")
class _TokenizeAndEmbed(keras.Model):
    """A model that owns the tokenizer, as a preprocessing-in-model would."""

    def __init__(self, tokenizer, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.embedding = keras.layers.Embedding(tokenizer.vocabulary_size(), 4)
        # Built up front so that loading finds the weights a place to go.
        self.embedding.build()
        self.built = True

    def call(self, text):
        return self.embedding(self.tokenizer(text).to_tensor())

    def get_config(self):
        config = super().get_config()
        config["tokenizer"] = keras.saving.serialize_keras_object(self.tokenizer)
        return config

    @classmethod
    def from_config(cls, config):
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)


def test_keras_file_round_trip_gives_identical_ids(tokenizer, tmp_path):
    model = _TokenizeAndEmbed(tokenizer)
    expected = model(tf.constant(TEXTS)).numpy()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.tokenizer(TEXTS).to_list() == tokenizer(TEXTS).to_list()
    np.testing.assert_array_equal(loaded(tf.constant(TEXTS)).numpy(), expected)


def test_saved_model_of_module_round_trips_text(tokenizer, tmp_path):
    class Translator(tf.Module):
        def __init__(self, tokenizer):
            super().__init__()
            self.tokenizer = tokenizer

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def round_trip(self, text):
            return self.tokenizer.detokenize(self.tokenizer.tokenize(text))

    tf.saved_model.save(Translator(tokenizer), str(tmp_path / "export"))
    del tokenizer
    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    out = reloaded.round_trip(tf.constant(TEXTS)).numpy().tolist()
    assert out == [t.encode() for t in TEXTS]


def test_check_vocabulary_matches(tokenizer):
    check_vocabulary_matches(tokenizer, model_vocabulary_size=100)
    with pytest.raises(ValueError, match=r"vocabulary_size\(\)=100.*=128"):
        check_vocabulary_matches(tokenizer, model_vocabulary_size=128)


def test_survives_reseeding_after_construction(proto):
    # keras.utils.set_random_seed clears TensorFlow's eager kernel cache, which
    # destroyed the SentencePiece resource of tokenizers built before it.
    tokenizer = SentencePieceTokenizer(proto)
    expected = tokenizer.tokenize("le chat dort").numpy()
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(tokenizer.tokenize("le chat dort").numpy(), expected)
    assert tokenizer.detokenize(expected).numpy().decode() == "le chat dort"
