"""Runnable keras_lm examples: `python -m examples.<name>.main --help`.

Importing this package first (as `python -m examples...` does) quiets a false
alarm before TensorFlow starts: on a machine without the NVIDIA driver,
TensorFlow's CUDA probe logs "failed call to cuInit: ... CUDA error" as a C++
error, and oneDNN logs its int64 fallback as one too. There, when
TF_CPP_MIN_LOG_LEVEL is unset or 2 (errors only, as `make` sets it), it is
raised to 3. Real failures still raise Python exceptions that carry their
message; set TF_CPP_MIN_LOG_LEVEL=0 or 1 to see every C++ log line.
"""

import ctypes
import os
import sys


def _quiet_tensorflow_without_a_gpu_driver():
    if "tensorflow" in sys.modules:
        return  # too late: TensorFlow reads the level once, when it loads
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") != "2":
        return
    try:
        ctypes.CDLL("libcuda.so.1")  # what TensorFlow loads to reach a GPU
    except OSError:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"


_quiet_tensorflow_without_a_gpu_driver()
