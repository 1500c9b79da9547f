"""Length-sorted batching inside an exported translator's graph.

Notation: B sentences in a request, R rows decoded together (at most
`batch_size`), S source width of a chunk, L output buffer length.

Beam search over a batch costs as much as its longest source and its longest
output, for every row. A request is therefore decoded as `translate_ids`
decodes a test set: sources sorted by length (stably), cut into chunks of
`batch_size`, each chunk padded only to its own longest source rounded up to
`width_multiple`, with an output buffer sized from that width. Results are
written back at each sentence's own position, so callers see the order they
sent. Widths and row counts come from a few buckets (rows are padded to a
power of two, widths to multiples of `width_multiple`), so an XLA-compiled
decoding loop compiles a bounded number of shapes, not one per request.
"""

import tensorflow as tf

from keras_lm.generation import decode_inputs, new_token_limits
from keras_lm.layers.validation import check_positive_int


def check_batching(batch_size, width_multiple):
    check_positive_int("batch_size", batch_size)
    check_positive_int("width_multiple", width_multiple)


def _round_up(value, multiple):
    return (value + multiple - 1) // multiple * multiple


def _row_bucket(rows, batch_size):
    """The power of two >= rows, at most `batch_size` (rows <= batch_size)."""
    power = tf.cast(
        tf.math.ceil(tf.math.log(tf.cast(rows, tf.float32)) / tf.math.log(2.0)),
        tf.int32,
    )
    return tf.minimum(tf.bitwise.left_shift(1, tf.maximum(power, 0)), batch_size)


class ChunkedDecoder:
    """Decodes ragged source ids [B, None] chunk by chunk; see the module doc.

    Args:
        decode_chunk: a `tf.function` `(ids [R, S], lengths [R]) -> [R, L]`
            best token ids, with L derived from S.
        special_ids: the model's `SpecialIds`.
        output_length: width of the returned id matrix (>= every chunk's L).
        batch_size: rows decoded together at most.
        width_multiple: source widths are rounded up to a multiple of this.
        max_source_length: widths never exceed it.
    """

    def __init__(
        self,
        decode_chunk,
        special_ids,
        output_length,
        batch_size,
        width_multiple,
        max_source_length,
    ):
        self._decode_chunk = decode_chunk
        self._eos = special_ids.eos_id
        self._fill = special_ids.fill_id  # padding, else EOS
        self._output_length = output_length
        self._batch_size = batch_size
        self._width_multiple = width_multiple
        self._max_source_length = max_source_length

    def __call__(self, sources):
        """Ragged int ids [B, None] (EOS-terminated) -> [B, output_length]."""
        lengths = tf.cast(sources.row_lengths(), tf.int32)  # [B]
        count = tf.shape(lengths)[0]
        order = tf.argsort(lengths, stable=True)
        pad = self._fill
        dense = tf.cast(
            sources.to_tensor(default_value=pad, shape=[None, self._max_source_length]),
            tf.int32,
        )
        dense = tf.gather(dense, order)  # [B, S_max], shortest first
        sorted_lengths = tf.gather(lengths, order)
        outputs = tf.fill([count, self._output_length], tf.constant(self._fill))

        def body(full):
            def step(start, outputs):
                end = tf.minimum(start + self._batch_size, count)
                rows = end - start
                width = tf.minimum(
                    _round_up(
                        tf.reduce_max(sorted_lengths[start:end]), self._width_multiple
                    ),
                    self._max_source_length,
                )
                padded_rows = _row_bucket(rows, self._batch_size)
                # Filler rows hold only EOS, as in translate_ids: an all-padding
                # source would leave cross-attention nothing to attend to.
                filler = tf.concat(
                    [
                        tf.fill([padded_rows - rows, 1], self._eos),
                        tf.fill([padded_rows - rows, width - 1], pad),
                    ],
                    axis=1,
                )
                ids = tf.concat([dense[start:end, :width], filler], axis=0)  # [R, S]
                chunk_lengths = tf.concat(
                    [
                        sorted_lengths[start:end],
                        tf.ones([padded_rows - rows], tf.int32),
                    ],
                    axis=0,
                )
                if full:  # rows known while tracing: [batch_size, S]
                    ids = tf.reshape(ids, [self._batch_size, -1])
                    chunk_lengths = tf.reshape(chunk_lengths, [self._batch_size])
                best = self._decode_chunk(ids, chunk_lengths)[:rows]  # [rows, L]
                best = tf.pad(
                    best,
                    [[0, 0], [0, self._output_length - tf.shape(best)[1]]],
                    constant_values=self._fill,
                )
                outputs = tf.tensor_scatter_nd_update(
                    outputs, order[start:end, None], best
                )
                return end, outputs

            return step

        # Full chunks first, decoded with their row count known while tracing:
        # the decoding loop drops rows as they end only then
        # (`generation.row_stages`). The last, partial chunk (if any) goes
        # through a second loop of at most one pass, with unknown rows. (A
        # `tf.cond` between the two in one loop decoded partial chunks with
        # the full branch's shapes in TF 2.21 graphs.)
        full_rows = count // self._batch_size * self._batch_size
        loops = ((True, full_rows), (False, count))
        start = tf.constant(0)
        for full, stop in loops:
            start, outputs = tf.while_loop(
                lambda start, _, stop=stop: start < stop,
                body(full),
                (start, outputs),
                shape_invariants=(
                    tf.TensorShape([]),
                    tf.TensorShape([None, self._output_length]),
                ),
            )
        return outputs


def build_chunk_function(
    decode_builder, special_ids, ratio, offset, output_length, length_penalty, beams
):
    """`(ids [R, S], lengths [R]) -> best ids [R, L]`, L = 1 + the new tokens
    a source of width S may get (as `translate_ids` sizes its buffers).

    L is computed from S's static value inside the function, so XLA sees it
    as a compile-time constant and compiles once per (R, S).
    """

    def decode_chunk(ids, lengths):
        width = tf.shape(ids)[1]
        widest = new_token_limits(width[None], ratio, offset, output_length - 1)[0]
        new_tokens = new_token_limits(lengths, ratio, offset, output_length - 1)
        start = tf.ones_like(lengths)
        run = decode_builder(1 + widest)
        outputs = run(
            decode_inputs(
                ids,
                start,
                start + new_tokens,
                special_ids,
                length_penalty=length_penalty,
            )
        )
        if beams > 1:
            outputs = outputs[0][:, 0]  # best beam, [R, L]
        return outputs

    return decode_chunk
