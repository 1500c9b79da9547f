"""Marian-style directories built here: SentencePiece models trained on the
offline gettext corpus, a `vocab.json` laid out as OPUS-MT's, and random-init
tiny transformers models saved with `save_pretrained`. Nothing downloads."""

import io
import json
import pathlib
import random
import shutil

import numpy as np
import pytest
import sentencepiece as spm

FRENCH_LOCALE = pathlib.Path("/usr/share/locale/fr/LC_MESSAGES")
requires_french_catalogs = pytest.mark.skipif(
    not any(FRENCH_LOCALE.glob("*.mo")),
    reason=f"no gettext catalogs under {FRENCH_LOCALE} on this machine",
)
TOKENIZER_FILES = ("source.spm", "target.spm", "vocab.json")


def corpus_pairs(count, seed=0):
    """`count` real (english, french) pairs from the gettext catalogs."""
    from keras_lm.data import load_gettext_pairs

    pairs = load_gettext_pairs(exclude_catalogs=["iso_*"])
    random.Random(seed).shuffle(pairs)
    return pairs[:count]


def _train(texts, vocab_size):
    model = io.BytesIO()
    # Coverage below 1 leaves rare characters unknown to each model, as in
    # OPUS-MT, so that the piece -> vocab.json -> <unk> path is exercised.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        vocab_size=vocab_size,
        character_coverage=0.995,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def write_tokenizer_files(path, pieces_per_side=120, training_pairs=3000):
    """source.spm (English), target.spm (French) and vocab.json in `path`:
    ids `</s>` 0, `<unk>` 1, the pieces of both models, then `<pad>` last.
    Returns the vocabulary size."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pairs = corpus_pairs(training_pairs, seed=1)
    vocab = {"</s>": 0, "<unk>": 1}
    for name, side in (("source.spm", 0), ("target.spm", 1)):
        proto = _train([pair[side] for pair in pairs], pieces_per_side)
        (path / name).write_bytes(proto)
        processor = spm.SentencePieceProcessor(model_proto=proto)
        for i in range(processor.get_piece_size()):
            if not (processor.is_control(i) or processor.is_unknown(i)):
                vocab.setdefault(processor.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    return len(vocab)


def copy_tokenizer_files(source, destination):
    for name in TOKENIZER_FILES:
        shutil.copy(pathlib.Path(source) / name, pathlib.Path(destination) / name)


def hf_tokenizer(path):
    transformers = pytest.importorskip("transformers")
    return transformers.MarianTokenizer(
        str(pathlib.Path(path) / "source.spm"),
        str(pathlib.Path(path) / "target.spm"),
        str(pathlib.Path(path) / "vocab.json"),
    )


def save_tiny_marian(path, vocab_size, share_embeddings=True, tie=True, seed=0):
    """A random-init 2+2-layer MarianMTModel (d_model 32, 4 heads, ffn 64)
    whose LayerNorm gains and biases, projection biases and final_logits_bias
    are redrawn so that a converter that drops one of them fails."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    config = transformers.MarianConfig(
        vocab_size=vocab_size,
        decoder_vocab_size=vocab_size,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=share_embeddings,
        tie_word_embeddings=tie,
        pad_token_id=vocab_size - 1,
        decoder_start_token_id=vocab_size - 1,
        eos_token_id=0,
        # Forced EOS at the length limit is a generation option keras_lm's
        # greedy decoding does not have; the parity test compares without it.
        forced_eos_token_id=None,
    )
    model = transformers.MarianMTModel(config).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "embed_positions" in name:
                continue  # the fixed sinusoid table
            if "embed_tokens" in name or "shared" in name:
                # Wider than transformers' init so logits vary by token and
                # greedy decoding does not repeat one id.
                parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
            elif parameter.ndim == 2:
                # Projections wider than the init: sources then steer the
                # output, and greedy decoding changes tokens along the way.
                scale = 2 * parameter.shape[1] ** -0.5
                parameter.copy_(
                    scale * torch.randn(parameter.shape, generator=generator)
                )
            elif "layer_norm" in name and name.endswith("weight"):
                parameter.copy_(
                    1 + 0.3 * torch.randn(parameter.shape, generator=generator)
                )
            elif name.endswith("bias"):
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
        model.final_logits_bias.copy_(
            0.5 * torch.randn(model.final_logits_bias.shape, generator=generator)
        )
    model.save_pretrained(str(path))
    return model


def hf_logits(model, encoder_ids, decoder_ids, pad_id, decoder_lengths):
    """transformers' logits with both attention masks."""
    import torch

    decoder_mask = (
        np.arange(decoder_ids.shape[1])[None] < np.asarray(decoder_lengths)[:, None]
    )
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(encoder_ids, dtype=torch.long),
            attention_mask=torch.tensor(encoder_ids != pad_id, dtype=torch.long),
            decoder_input_ids=torch.tensor(decoder_ids, dtype=torch.long),
            decoder_attention_mask=torch.tensor(decoder_mask, dtype=torch.long),
        ).logits.numpy()
