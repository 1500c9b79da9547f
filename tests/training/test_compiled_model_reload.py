"""A compiled model's `.keras` file loads after a plain `import keras_lm`.

The file names keras_lm's loss, metrics and learning-rate schedule; Keras can
only rebuild them if their modules were imported. The first version of the
translation example saved files that `import keras, keras_lm;
keras.saving.load_model(...)` refused ("Could not locate class
'InverseSqrtWarmup'"). The load runs in a fresh interpreter, since in this
process the test modules have long imported everything.
"""

import subprocess
import sys
import textwrap

from keras_lm.training import InverseSqrtWarmup, compile_model
from tests.training import training_helpers


def test_compiled_model_loads_in_a_fresh_process(tmp_path):
    model = training_helpers.tiny_seq2seq()
    compile_model(
        model,
        learning_rate=InverseSqrtWarmup(hidden_dim=8, warmup_steps=10),
        label_smoothing=0.1,
        jit_compile=False,
    )
    model.fit(
        training_helpers.translation_dataset(4, batch_size=4), shuffle=False, verbose=0
    )
    path = tmp_path / "model.keras"
    model.save(path)

    script = textwrap.dedent(
        f"""
        import keras
        import keras_lm
        model = keras.saving.load_model({str(path)!r})
        schedule = model.optimizer.get_config()["learning_rate"]
        print(schedule["class_name"], type(model.loss).__name__,
              int(model.optimizer.iterations.numpy()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == [
        "InverseSqrtWarmup",
        "MaskedSparseCategoricalCrossentropy",
        "1",
    ]
