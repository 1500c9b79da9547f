"""lm-evaluation-harness model "keras_lm": run harness tasks on a keras_lm model.

Importing this module registers the model name with lm-eval (`pip install
keras-lm[eval]`). lm-eval has no plugin mechanism for model names (no entry
points), so its own `lm_eval` command only knows "keras_lm" in a process
that imported this module; this module's command line is lm-eval's with the
name registered:

    python -m keras_lm.evaluation.lm_eval_adapter --model keras_lm \\
        --model_args pretrained=out/pretrained.keras,tokenizer=out/spm.model \\
        --tasks hellaswag --batch_size 16

or from Python:

    import keras_lm.evaluation.lm_eval_adapter  # registers "keras_lm"
    lm_eval.simple_evaluate(model="keras_lm", model_args={...}, tasks=[...])

model_args:
    pretrained: a `.keras` file of a `TransformerLM` (then `tokenizer` is
        required), a Hugging Face GPT-2 directory (converted with
        `keras_lm.convert.from_huggingface`; its tokenizer comes with it), or
        a model object.
    tokenizer: a SentencePiece `.model` file, a directory with GPT-2's
        `vocab.json` and `merges.txt`, or a keras_lm tokenizer object.
    add_bos_token: start contexts with the start-of-text id. Defaults to True
        for a keras_lm model (its training convention) and False for a
        Hugging Face directory (what lm-eval's `hf` backend does for GPT-2,
        so scores compare).
    max_length: the window; defaults to the model's `max_sequence_length`.
    max_gen_toks: most new tokens of `generate_until` requests (256).
    batch_size: rows per forward pass ("auto" means 32).
    device, max_batch_size: lm-eval's command line passes them; keras_lm
        runs on Keras' default device and uses `batch_size`.

Requests are tokenized and split as lm-eval's `TemplateLM` does for causal
models (the same class its `hf` backend builds on), and scored by
`keras_lm.evaluation`.
"""

import logging
import os

import lm_eval.models  # noqa: F401  (lm-eval's own names, before ours)
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import model_registry

from keras_lm.evaluation import text
from keras_lm.evaluation.loglikelihood import loglikelihood_ids
from keras_lm.evaluation.scoring import rolling_loglikelihood
from keras_lm.evaluation.until import generate_until

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32


class KerasLM(TemplateLM):
    """A keras_lm `TransformerLM` as an lm-eval model (see the module doc).

    Example:
    >>> lm = KerasLM(pretrained="gpt2_dir")
    >>> lm_eval.simple_evaluate(model=lm, tasks=["lambada_openai"])
    """

    def __init__(
        self,
        pretrained=None,
        tokenizer=None,
        add_bos_token=None,
        max_length=None,
        max_gen_toks=256,
        batch_size=DEFAULT_BATCH_SIZE,
        max_batch_size=None,
        device=None,
        **unknown,
    ):
        super().__init__()
        if unknown:
            raise ValueError(
                f"Unknown keras_lm model_args {sorted(unknown)}. Expected some of "
                "pretrained, tokenizer, add_bos_token, max_length, max_gen_toks, "
                "batch_size."
            )
        self.model, self.tokenizer, from_hub_layout = load_model(pretrained, tokenizer)
        self.special_ids = text.check_tokenizer(
            self.tokenizer, self.model, f"The keras_lm model {pretrained!r}"
        )
        if add_bos_token is None:
            add_bos_token = not from_hub_layout
        self.add_bos_token = bool(add_bos_token)
        self._max_length = int(max_length or self.model.max_sequence_length)
        self._max_gen_toks = int(max_gen_toks)
        self._batch_size = _batch_size(batch_size)
        self._encoded = {}
        if device:
            logger.info("keras_lm runs on Keras' default device (device=%s)", device)

    @property
    def eot_token_id(self):
        return self.special_ids.eos_id

    @property
    def prefix_token_id(self):
        return self.special_ids.text_start_id

    @property
    def max_length(self):
        return self._max_length

    @property
    def max_gen_toks(self):
        return self._max_gen_toks

    @property
    def batch_size(self):
        return self._batch_size

    @property
    def tokenizer_name(self):
        return type(self.tokenizer).__name__

    def get_model_info(self):
        return {
            "model_num_parameters": int(self.model.count_params()),
            "model_dtype": str(self.model.dtype_policy.name),
        }

    def tok_encode(
        self, string, add_special_tokens=None, left_truncate_len=None, **kwargs
    ):
        ids = self._encoded.get(string)
        if ids is None:
            ids = text.tokenize(self.tokenizer, [string])[0]
        add = self.add_bos_token if add_special_tokens is None else add_special_tokens
        if add:
            ids = [self.prefix_token_id] + ids
        if left_truncate_len:
            ids = ids[-left_truncate_len:]
        return ids

    def tok_decode(self, tokens):
        return text.detokenize(self.tokenizer, [list(tokens)])[0]

    def loglikelihood(self, requests, disable_tqdm=False):
        # Tokenize every string TemplateLM will ask for in one batch first.
        strings = set()
        for context, continuation in (request.args for request in requests):
            if context:
                context, continuation = text.split_trailing_space(context, continuation)
                strings.update((context, context + continuation))
            else:
                strings.add(continuation)
        self._remember_encodings(strings)
        try:
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        finally:
            self._encoded.clear()

    def _loglikelihood_tokens(self, requests, disable_tqdm=False, **kwargs):
        for strings, _, continuation_ids in requests:
            if not continuation_ids:
                raise ValueError(
                    f"The request (context, continuation)={strings!r} has a "
                    "continuation with no tokens: there is nothing to score."
                )
        results = loglikelihood_ids(
            self.model,
            [(context, continuation) for _, context, continuation in requests],
            batch_size=self.batch_size,
            max_length=self.max_length,
        )
        for (strings, _, _), answer in zip(requests, results):
            if strings is not None:
                self.cache_hook.add_partial("loglikelihood", strings, answer)
        return list(results)

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        documents = [request.args[0] for request in requests]
        self._remember_encodings(documents)
        try:
            token_lists = [self.tok_encode(document) for document in documents]
        finally:
            self._encoded.clear()
        totals = rolling_loglikelihood(
            self.model,
            None,
            token_lists,
            max_length=self.max_length,
            batch_size=self.batch_size,
        )
        for document, total in zip(documents, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", (document,), total)
        return totals

    def generate_until(self, requests, disable_tqdm=False):
        groups = {}
        for index, request in enumerate(requests):
            context, options = request.args
            key = repr(sorted((options or {}).items()))
            groups.setdefault(key, (options or {}, []))[1].append((index, context))
        results = [None] * len(requests)
        for options, members in groups.values():
            until, max_new_tokens = self._generation_options(options)
            contexts = [context for _, context in members]
            texts = generate_until(
                self.model,
                self.tokenizer,
                contexts,
                until=until,
                max_new_tokens=max_new_tokens,
                batch_size=self.batch_size,
                add_start_token=self.add_bos_token,
                max_length=self.max_length,
            )
            for (index, context), generated in zip(members, texts):
                results[index] = generated
                self.cache_hook.add_partial(
                    "generate_until", (context, options), generated
                )
        return results

    def _generation_options(self, options):
        options = dict(options)
        until = options.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        max_new_tokens = self.max_gen_toks
        for name in ("max_gen_toks", "max_new_tokens"):
            if name in options:
                max_new_tokens = int(options.pop(name))
        sampling = options.pop("do_sample", False)
        temperature = options.pop("temperature", 0.0)
        if sampling or (temperature or 0.0) > 0.0:
            raise ValueError(
                "The keras_lm lm-eval model decodes greedily; this task asks for "
                f"sampling (do_sample={sampling!r}, temperature={temperature!r}). "
                "Override it with --gen_kwargs do_sample=false,temperature=0."
            )
        return until, max_new_tokens

    def _remember_encodings(self, strings):
        strings = sorted(set(strings))
        self._encoded = dict(zip(strings, text.tokenize(self.tokenizer, strings)))


def evaluate(
    pretrained,
    tasks,
    *,
    tokenizer=None,
    model_args=None,
    include_path=None,
    include_defaults=True,
    **options,
):
    """`lm_eval.simple_evaluate` of a keras_lm model on harness tasks.

    Args:
        pretrained: a `KerasLM`, or what its `pretrained` takes (a `.keras`
            path, a Hugging Face GPT-2 directory or a model object).
        tasks: task names (or glob patterns, or YAML paths).
        tokenizer: the tokenizer (object or path), for `pretrained` that
            needs one.
        model_args: other `KerasLM` arguments (`add_bos_token`, ...).
        include_path: a directory (or list) of extra task YAML files.
        include_defaults: also index lm-eval's own tasks.
        **options: `simple_evaluate` options (`num_fewshot`, `limit`, ...).

    Returns:
        lm-eval's results dict.

    Raises:
        ValueError: for task names no task, group or tag has, naming them
            with the closest known names.
    """
    import difflib

    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path, include_defaults=include_defaults)
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    for task in tasks:
        known = not isinstance(task, str) or os.path.isfile(task)
        if not known and not manager.match_tasks([task]):
            close = difflib.get_close_matches(task, manager.all_tasks, n=3)
            raise ValueError(
                f"Unknown lm-eval task {task!r}. Closest names: {close or 'none'}. "
                "Tasks of your own need include_path= (a directory of task YAML)."
            )
    if not isinstance(pretrained, KerasLM):
        pretrained = KerasLM(
            pretrained=pretrained, tokenizer=tokenizer, **(model_args or {})
        )
    return lm_eval.simple_evaluate(
        model=pretrained, tasks=tasks, task_manager=manager, **options
    )


def load_model(pretrained, tokenizer=None):
    """`(model, tokenizer, is_hugging_face_directory)` from model_args."""
    import keras

    import keras_lm

    if pretrained is None:
        raise ValueError(
            "The keras_lm lm-eval model needs pretrained=: a .keras file of a "
            "TransformerLM (with tokenizer=), or a Hugging Face GPT-2 directory."
        )
    from_directory = False
    if isinstance(pretrained, (str, os.PathLike)):
        path = os.fspath(pretrained)
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "config.json")):
            model, converted = keras_lm.convert.from_huggingface(path)
            tokenizer = converted if tokenizer is None else tokenizer
            from_directory = True
        elif path.endswith(".keras") and os.path.isfile(path):
            model = keras.saving.load_model(path)
        else:
            raise ValueError(
                f"pretrained={path!r} is neither a .keras model file nor a Hugging "
                "Face model directory (with config.json)."
            )
    else:
        model = pretrained
    if not isinstance(model, keras_lm.models.TransformerLM):
        raise ValueError(
            "lm-eval scores decoder-only models: pretrained must be a "
            f"TransformerLM. Received: {type(model).__name__} from {pretrained!r}"
        )
    if tokenizer is None:
        raise ValueError(
            f"The model pretrained={pretrained!r} has no tokenizer. Pass "
            "tokenizer=: the SentencePiece .model file it was trained with, or a "
            "directory with vocab.json and merges.txt."
        )
    return model, load_tokenizer(tokenizer), from_directory


def load_tokenizer(tokenizer):
    """A keras_lm tokenizer from a path (SentencePiece `.model`, or a GPT-2
    `vocab.json` + `merges.txt` directory) or a tokenizer object."""
    import keras_lm

    if not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    path = os.fspath(tokenizer)
    if os.path.isfile(path):
        return keras_lm.tokenizers.SentencePieceTokenizer(path)
    vocabulary = os.path.join(path, "vocab.json")
    merges = os.path.join(path, "merges.txt")
    if os.path.isfile(vocabulary) and os.path.isfile(merges):
        return keras_lm.tokenizers.BytePairTokenizer(vocabulary, merges)
    raise ValueError(
        f"tokenizer={path!r} is neither a SentencePiece .model file nor a "
        "directory with vocab.json and merges.txt."
    )


def _batch_size(value):
    if isinstance(value, str) and value.startswith("auto"):
        return DEFAULT_BATCH_SIZE
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise ValueError(
            f"batch_size must be a positive integer or 'auto'. Received: {value!r}"
        )
    return size


# Registered by module path, not by class: running this file as __main__ (the
# command line) registers the same name for the same class.
model_registry.register(
    "keras_lm", target="keras_lm.evaluation.lm_eval_adapter:KerasLM"
)


def main():
    """lm-eval's command line, with "keras_lm" registered."""
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()


if __name__ == "__main__":
    main()
