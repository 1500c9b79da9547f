"""Compile a decoding function once per model and static configuration.

Every value that may change between calls without changing shapes (prompt ids,
lengths, seed, temperature, top-p, length penalty, EOS id) is passed as a
tensor, never as a Python object, so the compiled function is reused
(keras-hub#779: `generate()` recompiled on every call). What does change the
graph (method, beam count, top-k, batch size, buffer lengths) is the cache key.

On TensorFlow the function is a `tf.function(jit_compile=True)`, which reads
the model's variables by reference. On JAX it is a `jax.jit` whose variable
values are arguments, fed to the model through a `keras.StatelessScope`, so
weights updated after compiling are still used.
"""

import keras

_TRACES = {"count": 0}
_ATTRIBUTE = "_keras_lm_generate_functions"


def trace_count():
    """How many times a decoding function has been traced in this process.

    A call that reuses a compiled function leaves it unchanged; tests use it to
    show that equal shapes do not retrace.

    Example:
    >>> before = keras_lm.generation.trace_count()
    >>> model.generate(prompts, max_new_tokens=4)
    >>> model.generate(prompts, max_new_tokens=4)
    >>> keras_lm.generation.trace_count() - before  # 1 on a fresh model
    1
    """
    return _TRACES["count"]


def _counted(fn):
    def traced(*args):
        # Runs only while tracing: compiled calls never execute Python.
        _TRACES["count"] += 1
        return fn(*args)

    return traced


def get_function(model, key, build_fn, jit_compile=True):
    """The compiled function for `key` on `model`, built on first use.

    Args:
        model: the model (or any object with the decoding interface).
        key: a hashable description of everything static in the graph.
        build_fn: `() -> fn(*tensors)`, the Python function to compile.
        jit_compile: compile with XLA (TensorFlow) / jit (JAX). Without it,
            TensorFlow still builds one graph and JAX runs eagerly.

    Returns:
        A callable taking the same tensors as the built function.
    """
    functions = getattr(model, _ATTRIBUTE, None)
    if functions is None:
        functions = {}
        # Bypass Keras/TF attribute tracking: these are caches, not state to
        # save or export.
        object.__setattr__(model, _ATTRIBUTE, functions)
    variables = list(getattr(model, "variables", []))
    # Quantizing or rebuilding a model swaps its variables: compile again.
    full_key = (key, jit_compile, tuple(id(v) for v in variables))
    if full_key not in functions:
        functions[full_key] = _compile(_counted(build_fn()), variables, jit_compile)
    return functions[full_key]


def _compile(fn, variables, jit_compile):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit_compile, autograph=False)
    if backend == "jax" and jit_compile:
        import jax

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(stateless)

        def call(*args):
            return jitted([variable.value for variable in variables], *args)

        return call
    return fn
