"""One worker of a MultiWorkerMirroredStrategy run, started by the tests with
TF_CONFIG in its environment. Trains through `keras_lm.training.train` and
writes `<task_index>.json` (weight hash, history, chosen strategy) and
`<task_index>.npz` (weights) into the directory in argv[1].
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import training_helpers  # noqa: E402

from keras_lm import distribute, training  # noqa: E402


def main(out_dir):
    task_index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    # "auto" must see the two workers in TF_CONFIG and pick multi-worker.
    strategy = distribute.get_strategy("auto")

    def build_model():
        keras.utils.set_random_seed(0)
        return training_helpers.tiny_transformer()

    history = training.train(
        build_model,
        training_helpers.translation_dataset(16, batch_size=4, seed=1),
        validation_data=training_helpers.translation_dataset(8, batch_size=4, seed=2),
        epochs=2,
        strategy=strategy,
        # Only worker 1 asks to stop; worker 0 must stop with it or it would
        # wait forever in the next all-reduce.
        callbacks=training.default_callbacks(
            os.path.join(out_dir, "run"), monitor="val_loss", strategy=strategy
        )
        + [training_helpers.StopAt(epoch=1, batch=1, only_task=1)],
        compile_options=training_helpers.PARITY_COMPILE,
        verbose=0,
    )
    weights = history.model.get_weights()
    digest = hashlib.sha256(b"".join(w.tobytes() for w in weights)).hexdigest()
    np.savez(os.path.join(out_dir, f"{task_index}.npz"), *weights)
    with open(os.path.join(out_dir, f"{task_index}.json"), "w") as f:
        json.dump(
            {
                "strategy": type(strategy).__name__,
                "replicas": strategy.num_replicas_in_sync,
                "chief": distribute.is_chief(strategy),
                "sha256": digest,
                "history": history.history,
                "epochs": history.epoch,
            },
            f,
        )


if __name__ == "__main__":
    main(sys.argv[1])
