"""Tiny GPT-2 checkpoints built here: a byte-level BPE trained on synthetic
text and a random-init `GPT2LMHeadModel` saved with `save_pretrained`.

transformers, torch and tokenizers are test-only dependencies: callers
`pytest.importorskip` them first.
"""

import json

import numpy as np

from tests.data.corpus_helpers import make_pairs

END_OF_TEXT = "<|endoftext|>"


def train_bpe(directory, texts, vocab_size):
    """vocab.json + merges.txt of a byte-level BPE, "<|endoftext|>" last (as in
    GPT-2, where id 0 is "!")."""
    from tokenizers import ByteLevelBPETokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[]
    )
    directory.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(directory))
    path = directory / "vocab.json"
    vocabulary = json.loads(path.read_text(encoding="utf-8"))
    vocabulary[END_OF_TEXT] = len(vocabulary)
    path.write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
    return len(vocabulary)


def synthetic_texts():
    return [side for pair in make_pairs(400, seed=3) for side in pair]


def save_tiny_gpt2(directory, seed=0, vocab_size=290, n_positions=40, **config):
    """Writes a random-init GPT-2 (2 layers, width 32, 4 heads) with its
    tokenizer into `directory`; LayerNorm gains and biases are re-drawn so a
    converter that drops them fails. Returns the torch model (eval mode)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    size = train_bpe(directory, synthetic_texts(), vocab_size)
    torch.manual_seed(seed)
    options = dict(
        vocab_size=size,
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=size - 1,
        eos_token_id=size - 1,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    options.update(config)
    model = GPT2LMHeadModel(GPT2Config(**options))
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(
                    1.0 + 0.3 * torch.randn(module.weight.shape, generator=generator)
                )
                module.bias.copy_(
                    0.3 * torch.randn(module.bias.shape, generator=generator)
                )
            # Larger weights than GPT-2's init make the tiny model's choices
            # clear-cut, so greedy and beam outputs are not near-ties.
            if isinstance(module, torch.nn.Embedding):
                module.weight.mul_(10.0)
    model.eval()
    model.save_pretrained(str(directory))
    return model


def hf_logits(torch_model, ids, attention_mask=None):
    import torch

    with torch.no_grad():
        kwargs = {}
        if attention_mask is not None:
            kwargs["attention_mask"] = torch.tensor(attention_mask)
        out = torch_model(torch.tensor(np.asarray(ids), dtype=torch.long), **kwargs)
    return out.logits.numpy()


def hf_generate(torch_model, ids, **options):
    import torch

    eos = options.pop("eos_token_id", torch_model.config.eos_token_id)
    with torch.no_grad():
        out = torch_model.generate(
            torch.tensor(np.asarray(ids), dtype=torch.long),
            attention_mask=torch.ones(np.asarray(ids).shape, dtype=torch.long),
            # Rows that end early are filled with EOS, as keras_lm fills them
            # for a vocabulary without padding.
            pad_token_id=eos,
            eos_token_id=eos,
            **options,
        )
    return out.numpy()
