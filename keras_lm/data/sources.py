"""Streamed corpora: files, globs, TFDS names and datasets as `tf.data` text.

Shapes: N = lines (or examples) per chunk.

Everything here reads lazily inside `tf.data`: memory is bounded by the
chunk and buffer sizes, never by the corpus. Text is handled in chunks of N
strings so parsing and tokenization run vectorized.

A source is one of:
- a path or glob (`str` or path-like), or a list of `pathlib.Path`: text
  files, plain or gzip (by a `.gz` suffix). Translation files hold
  `source<TAB>target[<TAB>...]` lines; LM files hold one document per line;
- the name of a TFDS dataset (a `str` that matches no file), read from its
  `"train"` split, or the dataset from `tfds_text(...)`;
- a `tf.data.Dataset` of strings: `(source, target)` pairs or TSV lines for
  translation, documents for LM.

Lines that are not valid UTF-8, have no tab (translation) or an empty side
raise an error naming the file and line (`on_bad_line="error"`), or are
skipped, each one reported on stderr with its file and line
(`on_bad_line="skip"`). Blank lines carry nothing and are passed over.
"""

import glob
import os
import pathlib
import sys

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
CHUNK = 512
ON_BAD_LINE = ("error", "skip")
_GLOB_CHARS = frozenset("*?[")


def is_streamed(value):
    """Whether a pipeline input is streamed rather than an in-memory list."""
    if isinstance(value, (tf.data.Dataset, str, os.PathLike)):
        return True
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(item, os.PathLike) for item in value)
    )


def expand_files(source):
    """Sorted file paths for a path, a glob, or a list of paths.

    Raises `ValueError` naming the pattern when nothing matches.
    """
    patterns = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    files = []
    for pattern in map(os.fspath, patterns):
        if "\t" in pattern or "\n" in pattern:
            raise TypeError(
                "Expected a path or glob of files, or a list of (source, target) "
                f"str tuples; received a str that looks like text: {pattern!r:.80}"
            )
        matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
        if not matches:
            raise ValueError(
                f"No file matches '{pattern}'. Pass an existing file, a glob "
                "such as 'corpus/*.tsv.gz', or a list of pathlib.Path."
            )
        files += matches
    return files


def looks_like_tfds_name(source):
    """Whether `source` matches no file but names a registered TFDS builder."""
    if not isinstance(source, str) or _GLOB_CHARS & set(source):
        return False
    if glob.glob(source):
        return False
    import tensorflow_datasets as tfds

    try:
        tfds.builder_cls(source.split("/")[0].split(":")[0])
    except Exception:  # DatasetNotFoundError, or a name TFDS cannot parse.
        return False
    return True


def check_on_bad_line(on_bad_line):
    if on_bad_line not in ON_BAD_LINE:
        raise ValueError(
            f"on_bad_line must be one of {ON_BAD_LINE}. "
            f"Received: on_bad_line={on_bad_line!r}"
        )


def file_lines(files, shuffle=False, seed=None, input_context=None, cycle_length=8):
    """`(where [N], text [N])` chunks of the lines of `files`.

    `where` is `"path:line"` for error messages. With `shuffle`, the file
    order changes each epoch and up to `cycle_length` files are read
    together, mixing their lines; otherwise files are read in order, one
    after another. With an `input_context` (from
    `tf.distribute.Strategy.distribute_datasets_from_function`), this input
    pipeline reads only its own files.
    """
    files = shard_files(files, input_context)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed)

    def read(path):
        compression = tf.where(tf.strings.regex_full_match(path, r".*\.gz"), "GZIP", "")
        lines = tf.data.TextLineDataset(path, compression_type=compression)
        return (
            lines.enumerate(start=1)
            .batch(CHUNK)
            .map(
                lambda number, text: (
                    tf.strings.join([path, ":", tf.strings.as_string(number)]),
                    text,
                )
            )
        )

    dataset = dataset.interleave(
        read,
        cycle_length=min(cycle_length, len(files)) if shuffle else 1,
        num_parallel_calls=AUTOTUNE if shuffle else None,
        deterministic=True if shuffle else None,
    )
    return with_file_sharding(dataset)


def shard_files(files, input_context):
    """The files one input pipeline reads: every `num_input_pipelines`-th."""
    files = [os.fspath(f) for f in files]
    if input_context is None:
        return files
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) < count:
        raise ValueError(
            f"{len(files)} file(s) for {count} input pipelines: each worker "
            "reads whole files, so there must be at least one per worker. "
            "Split the corpus into more files (keras-lm prepare writes one "
            "shard per input file)."
        )
    return files[index::count]


def with_file_sharding(dataset):
    """Asks `tf.distribute` to give each worker its own files."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.FILE
    )
    return dataset.with_options(options)


def dataset_lines(dataset, name="<dataset>"):
    """`(where, text)` chunks of a `tf.data.Dataset` of strings."""
    return (
        dataset.enumerate(start=1)
        .batch(CHUNK)
        .map(
            lambda number, text: (
                tf.strings.join([name, ":", tf.strings.as_string(number)]),
                text,
            )
        )
    )


def parse_tsv(chunks, on_bad_line):
    """`(source [N], target [N])` string chunks from `(where, line)` chunks."""

    def parse(where, lines):
        lines = tf.strings.strip(lines)
        keep = tf.strings.length(lines) > 0
        where, lines = where[keep], lines[keep]
        columns = tf.strings.split(lines, "\t")  # ragged [N, None]
        enough = columns.row_lengths() >= 2
        padded = columns.to_tensor("", shape=[None, 2])  # [N, 2]
        source = tf.strings.strip(padded[:, 0])
        target = tf.strings.strip(padded[:, 1])
        valid = _is_utf8(lines)
        nonempty = (tf.strings.length(source) > 0) & (tf.strings.length(target) > 0)
        reason = tf.where(
            ~valid,
            "not valid UTF-8",
            tf.where(~enough, "no tab between source and target", "an empty side"),
        )
        ok = valid & enough & nonempty
        with tf.control_dependencies(_check_lines(where, reason, ok, on_bad_line)):
            return tf.identity(source[ok]), tf.identity(target[ok])

    return chunks.map(parse, num_parallel_calls=AUTOTUNE)


def parse_documents(chunks, on_bad_line):
    """Non-empty, stripped document chunks `[N]` from `(where, line)` chunks."""

    def parse(where, lines):
        lines = tf.strings.strip(lines)
        keep = tf.strings.length(lines) > 0
        where, lines = where[keep], lines[keep]
        ok = _is_utf8(lines)
        reason = tf.fill(tf.shape(lines), "not valid UTF-8")
        with tf.control_dependencies(_check_lines(where, reason, ok, on_bad_line)):
            return tf.identity(lines[ok])

    return chunks.map(parse, num_parallel_calls=AUTOTUNE)


def _is_utf8(lines):
    # Transcoding leaves valid UTF-8 unchanged (a real U+FFFD included) and
    # replaces every invalid byte sequence.
    fixed = tf.strings.unicode_transcode(lines, "UTF-8", "UTF-8", errors="replace")
    return tf.equal(lines, fixed)


def _check_lines(where, reason, ok, on_bad_line):
    """Ops that fail on, or report, the lines where `ok` is False."""
    messages = tf.strings.join([where, ": ", reason])
    if on_bad_line == "error":
        first = tf.argmin(tf.cast(ok, tf.int32))
        message = tf.strings.join(
            [
                "keras_lm: bad line at ",
                tf.gather(messages, first),
                ". Fix the line, or pass on_bad_line='skip' to skip and "
                "report such lines.",
            ]
        )
        return [tf.debugging.Assert(tf.reduce_all(ok), [message])]

    def report():
        bad = tf.strings.reduce_join(
            tf.strings.join(["keras_lm: skipped ", messages[~ok]]), separator="\n"
        )
        with tf.control_dependencies([tf.print(bad, output_stream=sys.stderr)]):
            return tf.constant(0)

    return [tf.cond(tf.reduce_all(ok), lambda: tf.constant(0), report)]


def text_chunks(source, kind, shuffle, seed, input_context, on_bad_line):
    """Chunks of strings from any streamed source: `(source, target)` string
    chunks for `kind="translation"`, document chunks for `kind="lm"`."""
    check_on_bad_line(on_bad_line)
    parse = parse_tsv if kind == "translation" else parse_documents
    if isinstance(source, tf.data.Dataset):
        return _dataset_chunks(source, kind, parse, input_context, on_bad_line)
    if looks_like_tfds_name(source):
        from keras_lm.data.tfds_corpora import tfds_text

        dataset = tfds_text(
            source,
            input_context=input_context,
            text_feature=None if kind == "translation" else "text",
        )
        return _dataset_chunks(dataset, kind, parse, None, on_bad_line)
    files = expand_files(source)
    return parse(file_lines(files, shuffle, seed, input_context), on_bad_line)


def _dataset_chunks(dataset, kind, parse, input_context, on_bad_line):
    if input_context is not None:
        dataset = dataset.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    spec = dataset.element_spec
    strings = [tf.TensorSpec([], tf.string)]
    if (
        kind == "translation"
        and isinstance(spec, tuple)
        and tf.nest.flatten(spec) == strings * 2
    ):
        pairs = dataset.map(lambda *pair: tuple(pair))
        return _pair_chunks(pairs, parse, on_bad_line)
    if tf.nest.flatten(spec) != strings:
        expected = (
            "(source, target) string pairs or TSV lines"
            if kind == "translation"
            else "strings (one document each)"
        )
        raise TypeError(
            f"The dataset must hold {expected}. Received: element_spec={spec}"
        )
    return parse(dataset_lines(dataset), on_bad_line)


def _pair_chunks(pairs, parse, on_bad_line):
    """Pairs become TSV lines (tabs inside a side are spaces) and are parsed,
    so they go through the same checks as lines read from files."""

    def join(source, target):
        clean = [
            tf.strings.regex_replace(side, "[\t\n]", " ") for side in (source, target)
        ]
        return tf.strings.join(clean, separator="\t")

    return parse(dataset_lines(pairs.map(join)), on_bad_line)


def describe(source):
    """A short name of a source for messages."""
    if isinstance(source, tf.data.Dataset):
        return "the dataset"
    if isinstance(source, (list, tuple)):
        return f"{len(source)} files ({pathlib.Path(source[0]).name}, ...)"
    return f"'{os.fspath(source)}'"
