"""Argument checks shared by layers and models; errors name the value."""


def check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        requirement = (
            "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        )
        raise ValueError(f"{name} must be {requirement}. Received: {name}={value!r}")


def check_rate(name, value):
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(
            f"{name} must be a float in [0, 1). Received: {name}={value!r}"
        )


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {sorted(choices)}. Received: {name}={value!r}"
        )


def check_sequence_length(name, length, max_sequence_length):
    """Raise when a statically known length exceeds the model's limit."""
    if length is not None and length > max_sequence_length:
        raise ValueError(
            f"{name} has length {length}, longer than max_sequence_length="
            f"{max_sequence_length}. Truncate the inputs (the data pipelines take "
            "`max_length`) or build the model with a larger max_sequence_length."
        )


def check_ids_in_vocabulary(name, ids, vocabulary_size):
    """Raise unless every id of the NumPy array `ids` is in [0, vocabulary_size).

    XLA (and GPU gathers) clamp an out-of-range id to a real embedding row
    instead of failing, so this is checked wherever ids reach the host.
    """
    if not ids.size:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocabulary_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"{name} holds id {bad}, outside the model's vocabulary of size "
            f"{vocabulary_size}: ids must be in [0, {vocabulary_size}). Tokenize "
            "with the tokenizer the model was built for (vocabulary_size="
            "tokenizer.vocabulary_size())."
        )
