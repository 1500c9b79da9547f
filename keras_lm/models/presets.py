"""Model configurations as plain dicts (no weights to download).

`transformer_base` and `transformer_big` are the paper's (Vaswani et al., 2017,
Table 3; English-French big used dropout 0.1). The others fit a 2-core CPU.
Vocabulary size comes from the tokenizer, so presets leave it out.
"""

SEQ2SEQ_PRESETS = {
    "tiny": dict(
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=512,
        max_sequence_length=128,
        dropout=0.1,
    ),
    "small": dict(
        num_encoder_layers=3,
        num_decoder_layers=3,
        num_heads=4,
        hidden_dim=256,
        intermediate_dim=1024,
        max_sequence_length=128,
        dropout=0.1,
    ),
    "transformer_base": dict(
        num_encoder_layers=6,
        num_decoder_layers=6,
        num_heads=8,
        hidden_dim=512,
        intermediate_dim=2048,
        max_sequence_length=256,
        dropout=0.1,
        normalize_first=False,
    ),
    "transformer_big": dict(
        num_encoder_layers=6,
        num_decoder_layers=6,
        num_heads=16,
        hidden_dim=1024,
        intermediate_dim=4096,
        max_sequence_length=256,
        dropout=0.1,
        normalize_first=False,
    ),
}

LM_PRESETS = {
    "lm_tiny": dict(
        num_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=512,
        max_sequence_length=256,
    ),
    "lm_small": dict(
        num_layers=4,
        num_heads=4,
        hidden_dim=256,
        intermediate_dim=1024,
        max_sequence_length=512,
    ),
}


def get_preset(name, family="seq2seq"):
    """A copy of the named preset's keyword arguments."""
    table = SEQ2SEQ_PRESETS if family == "seq2seq" else LM_PRESETS
    if name not in table:
        raise ValueError(
            f"Unknown {family} preset {name!r}. Available: {sorted(table)}."
        )
    return dict(table[name])
