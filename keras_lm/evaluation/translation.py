"""Corpus-level translation scores with sacreBLEU (Post, 2018)."""

import sacrebleu


def score_translations(hypotheses, references):
    """BLEU and chrF of detokenized hypotheses against one reference each.

    sacreBLEU scores detokenized text with its own standard tokenization
    ("13a"), so the figures are comparable with published ones.

    Args:
        hypotheses: list of str, the system's translations.
        references: list of str, one reference per hypothesis.

    Returns:
        dict with "bleu" and "chrf" (0-100 floats), "signature" strings and
        the number of sentences scored.

    Example:
    >>> score_translations(["le chat"], ["le chat"])["bleu"]
    100.00000000000004
    """
    hypotheses = [_as_text(h) for h in hypotheses]
    references = [_as_text(r) for r in references]
    if len(hypotheses) != len(references):
        raise ValueError(
            "Need one reference per hypothesis. Received: "
            f"{len(hypotheses)} hypotheses, {len(references)} references"
        )
    if not hypotheses:
        raise ValueError("Nothing to score: hypotheses and references are empty.")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
    }


def _as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
