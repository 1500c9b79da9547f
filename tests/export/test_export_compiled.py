"""The XLA signatures of an exported translator, and its length-sorted batching.

`translate_xla` / `translate_xla_ids` must decode exactly what the plain
signatures and in-process `translate_ids` decode, in the caller's order, with
requests cut into several chunks; they must be XLA functions, which run in a
process without keras_lm (`tf.saved_model.load`) and in `saved_model_cli run`,
while `serving_default` stays free of XLA for TensorFlow Serving.
"""

import json
import os

import numpy as np
import pytest

import keras_lm
from tests.conftest import requires_tensorflow
from tests.data.corpus_helpers import make_pairs
from tests.export.test_export import BLOCK_LIBRARIES, _python
from tests.generation.test_row_stages import _spy_resize

pytestmark = [requires_tensorflow, pytest.mark.slow]

PAIRS = make_pairs(120, seed=3, max_words=12)
OPTIONS = dict(
    num_beams=3,
    max_source_length=12,
    source_length_ratio=1.0,
    source_length_offset=2,
)
# Several chunks of 3, widths rounded to multiples of 4 (three width
# buckets), lengths in no particular order.
BATCHING = dict(batch_size=3, width_multiple=4)
TEXTS = [PAIRS[i][0] for i in (5, 0, 17, 3, 40, 8, 2)] + ["", PAIRS[9][0] * 3]


def random_translator(tokenizer, seed=0):
    """A random model whose EOS logit is zero, so outputs are not all empty."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras_lm.models.TransformerSeq2Seq(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=20,
    )
    embeddings = model.token_embedding.embeddings
    values = keras.ops.convert_to_numpy(embeddings)
    values[tokenizer.eos_id] = 0.0
    embeddings.assign(values)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    texts = [side for pair in PAIRS for side in pair]
    proto = keras_lm.tokenizers.train_sentencepiece(texts, vocab_size=60)
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    model = random_translator(tokenizer)
    path = str(tmp_path_factory.mktemp("compiled") / "translator")
    keras_lm.export.export_translator(model, tokenizer, path, **OPTIONS, **BATCHING)
    return model, tokenizer, path


def _new_ids(rows, special_ids):
    ids = []
    for row in rows:
        kept = []
        for token in row[1:]:
            if token in (special_ids.eos_id, special_ids.pad_id):
                break
            kept.append(int(token))
        ids.append(kept)
    return ids


def test_xla_and_plain_signatures_match_translate_ids(exported):
    model, tokenizer, path = exported
    loaded = keras_lm.export.load_exported(path)
    expected = keras_lm.generation.translate_ids(model, tokenizer, TEXTS, **OPTIONS)
    assert len({len(ids) for ids in expected}) > 2  # outputs of several lengths
    for name in ("translate_ids", "translate_xla_ids"):
        rows = loaded.signatures[name](text=np.array(TEXTS))["token_ids"].numpy()
        assert rows.shape == (len(TEXTS), model.max_sequence_length)
        assert _new_ids(rows, model.special_ids) == expected, name
    strings = keras_lm.generation.translate_texts(model, tokenizer, TEXTS, **OPTIONS)
    for name in ("serving_default", "translate_xla"):
        out = loaded.signatures[name](text=np.array(TEXTS))["translation"].numpy()
        assert [t.decode() for t in out] == strings, name


def test_order_of_a_request_does_not_change_its_translations(exported):
    model, _, path = exported
    loaded = keras_lm.export.load_exported(path)
    translate = loaded.signatures["translate_xla_ids"]
    whole = translate(text=np.array(TEXTS))["token_ids"].numpy()
    reverse = translate(text=np.array(TEXTS[::-1]))["token_ids"].numpy()
    np.testing.assert_array_equal(reverse[::-1], whole)
    one = translate(text=np.array(TEXTS[2:3]))["token_ids"].numpy()
    np.testing.assert_array_equal(one[0], whole[2])
    empty = translate(text=np.array([], dtype=str))["token_ids"].numpy()
    assert empty.shape == (0, model.max_sequence_length)


def _functions_reached(path, signature):
    """Names of the library functions a signature's graph can call."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    library = {function.signature.name: function for function in graph.library.function}

    def calls(nodes):
        for node in nodes:
            for value in node.attr.values():
                if value.func.name:
                    yield value.func.name
                for function in value.list.func:
                    yield function.name

    roots = [
        node for node in graph.node if node.name.startswith("StatefulPartitionedCall")
    ]
    outputs = proto.meta_graphs[0].signature_def[signature].outputs
    wanted = {tensor.name.split(":")[0] for tensor in outputs.values()}
    roots = [node for node in roots if node.name in wanted]
    seen, todo = set(), list(calls(roots))
    while todo:
        name = todo.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        todo.extend(calls(library[name].node_def))
    return {name: library[name] for name in seen}


def _compiled(functions):
    return [
        name
        for name, function in functions.items()
        if function.attr["_XlaMustCompile"].b
    ]


def test_only_the_xla_signatures_hold_xla_functions(exported):
    _, _, path = exported
    assert _compiled(_functions_reached(path, "translate_xla"))
    assert _compiled(_functions_reached(path, "translate_xla_ids"))
    assert not _compiled(_functions_reached(path, "serving_default"))
    assert not _compiled(_functions_reached(path, "translate_ids"))


LOAD_XLA = (
    BLOCK_LIBRARIES
    + """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the SentencePiece ops
loaded = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.stdin.read())
ids = loaded.signatures["translate_xla_ids"](text=tf.constant(texts))["token_ids"]
assert not any(m.split(".")[0] in ("keras_lm", "keras_hub") for m in sys.modules)
print(json.dumps(ids.numpy().tolist()))
"""
)


def test_xla_signature_runs_without_keras_lm_and_in_saved_model_cli(exported):
    model, tokenizer, path = exported
    expected = keras_lm.generation.translate_ids(model, tokenizer, TEXTS, **OPTIONS)
    rows = json.loads(_python(LOAD_XLA, path, stdin=json.dumps(TEXTS)))
    assert _new_ids(rows, model.special_ids) == expected
    # A TF1 session (what TensorFlow Serving's loader does) restores the
    # variables and runs the XLA function over them.
    run = _python(
        BLOCK_LIBRARIES + "import sys, tensorflow_text\n"
        "from tensorflow.python.tools import saved_model_cli\n"
        "sys.argv = ['saved_model_cli'] + sys.argv[1:]\n"
        "saved_model_cli.main()",
        "run",
        "--dir",
        path,
        "--tag_set",
        "serve",
        "--signature_def",
        "translate_xla_ids",
        "--input_exprs",
        f"text={TEXTS[:3]!r}",
    )
    printed = run.split("Result for output key token_ids:")[1]
    numbers = [int(x) for x in printed.replace("[", " ").replace("]", " ").split()]
    width = model.max_sequence_length
    rows = [numbers[i : i + width] for i in range(0, len(numbers), width)]
    assert _new_ids(rows, model.special_ids) == expected[:3]


@pytest.mark.parametrize(
    "option, value",
    [("batch_size", 0), ("batch_size", 2.5), ("width_multiple", -1)],
)
def test_bad_batching_options_are_refused(exported, tmp_path, option, value):
    model, tokenizer, _ = exported
    with pytest.raises(ValueError, match=f"{option}={value!r}"):
        keras_lm.export.export_translator(
            model, tokenizer, str(tmp_path / "x"), **{option: value}
        )


def test_export_saves_the_weights_but_not_the_optimizer(exported, tmp_path):
    import tensorflow as tf

    model, tokenizer, _ = exported
    keras_lm.training.compile_model(model, learning_rate=1e-3)
    model.optimizer.build(model.trainable_variables)  # Adam: 2 slots per weight
    path = str(tmp_path / "translator")
    keras_lm.export.export_translator(model, tokenizer, path, xla_signatures=False)
    saved = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    names = saved.get_variable_to_shape_map()
    assert not [name for name in names if "optimizer" in name]
    saved_values = sum(int(np.prod(shape)) for shape in names.values())
    assert saved_values < 1.5 * model.count_params()


def test_full_chunks_drop_done_rows_and_match_translate_ids(tmp_path, monkeypatch):
    """Chunks of 8 rows (stages of 8 and 4 rows): 18 texts make two full
    chunks, whose decoding loop drops rows as they end, and a partial one;
    every signature still returns translate_ids' translations."""
    from keras_lm.generation import row_stages

    texts = [side for pair in PAIRS for side in pair]
    proto = keras_lm.tokenizers.train_sentencepiece(texts, vocab_size=60)
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    model = random_translator(tokenizer, seed=1)
    taken = []
    original_take = row_stages._take_rows
    monkeypatch.setattr(
        row_stages,
        "_take_rows",
        lambda structure, indices: (
            taken.append(indices.shape) or original_take(structure, indices)
        ),
    )
    path = str(tmp_path / "translator")
    keras_lm.export.export_translator(
        model, tokenizer, path, batch_size=8, width_multiple=4, **OPTIONS
    )
    assert (4,) in [tuple(shape) for shape in taken]  # 8 rows -> 4 while tracing
    requests = TEXTS * 2
    expected = keras_lm.generation.translate_ids(model, tokenizer, requests, **OPTIONS)
    loaded = keras_lm.export.load_exported(path)
    for name in ("translate_ids", "translate_xla_ids"):
        rows = loaded.signatures[name](text=np.array(requests))["token_ids"].numpy()
        assert _new_ids(rows, model.special_ids) == expected, name


def test_exports_grow_the_cache_and_match_translate_ids(tmp_path, monkeypatch):
    """With growth stages of 2, 4 and 8 slots (the buffer's length known only
    when XLA compiles), both id signatures return translate_ids'
    translations. Three growth loops in a row once made TF's XLA bridge fail
    on a constant carried through them."""
    from keras_lm.generation import row_stages

    texts = [side for pair in PAIRS for side in pair]
    proto = keras_lm.tokenizers.train_sentencepiece(texts, vocab_size=60)
    tokenizer = keras_lm.tokenizers.SentencePieceTokenizer(proto)
    model = random_translator(tokenizer, seed=2)
    expected = keras_lm.generation.translate_ids(model, tokenizer, TEXTS, **OPTIONS)
    monkeypatch.setattr(row_stages, "FIRST_CAPACITY", 2)
    sizes = []
    _spy_resize(model, sizes)
    path = str(tmp_path / "translator")
    keras_lm.export.export_translator(model, tokenizer, path, **OPTIONS, **BATCHING)
    assert len(sizes) >= 4  # 2, 4, 8 slots, then the full buffer
    loaded = keras_lm.export.load_exported(path)
    for name in ("translate_ids", "translate_xla_ids"):
        rows = loaded.signatures[name](text=np.array(TEXTS))["token_ids"].numpy()
        assert _new_ids(rows, model.special_ids) == expected, name
