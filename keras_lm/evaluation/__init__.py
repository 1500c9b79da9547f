"""Evaluate models: translation scores, and log-likelihood scoring of text.

- `score_translations`: corpus BLEU and chrF with sacreBLEU.
- `loglikelihood_ids` / `loglikelihood`: exact log-likelihood of
  continuations given contexts, batched over bucketed shapes.
- `rolling_loglikelihood` / `perplexity`: whole documents in sliding windows.
- `multiple_choice`: accuracy (raw and length-normalised) of picking the
  most likely choice.
- `generate_until`: greedy generation cut at stop strings.
- `few_shot_prompt`: k solved examples, drawn with a seed, then the query.

`keras_lm.evaluation.lm_eval_adapter` runs lm-evaluation-harness tasks on a
keras_lm model (it needs `lm-eval`, the `eval` extra; importing this package
does not import it).
"""

from keras_lm.evaluation.few_shot import few_shot_prompt
from keras_lm.evaluation.loglikelihood import LoglikelihoodResults, loglikelihood_ids
from keras_lm.evaluation.scoring import (
    loglikelihood,
    multiple_choice,
    perplexity,
    rolling_loglikelihood,
    rolling_windows,
)
from keras_lm.evaluation.translation import score_translations
from keras_lm.evaluation.until import generate_until

__all__ = [
    "LoglikelihoodResults",
    "few_shot_prompt",
    "generate_until",
    "loglikelihood",
    "loglikelihood_ids",
    "multiple_choice",
    "perplexity",
    "rolling_loglikelihood",
    "rolling_windows",
    "score_translations",
]
