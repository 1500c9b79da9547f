# Every target sets up .venv first (once), so `make demo` and `make test`
# work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED = 1

.PHONY: install test test-tf test-jax lint format bench demo clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# The whole suite on TensorFlow and, alongside it, the layer and model tests
# again on JAX. A pytest process keeps about one core busy (tracing, XLA
# compiles and Python), so the TensorFlow suite runs in two processes
# (pytest-xdist, whole files each) and the JAX run beside them. Each run's
# output is printed when it ends.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(MAKE) -j2 --output-sync=target test-tf test-jax

test-tf: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q -p no:cacheprovider \
		-n $(TEST_WORKERS) --dist loadfile tests

test-jax: $(STAMP)
	KERAS_BACKEND=jax $(PY) -m pytest -q -p no:cacheprovider -m multibackend tests

lint: $(STAMP)
	$(PY) -m ruff check keras_lm tests examples bench
	$(PY) -m ruff format --check keras_lm tests examples bench

format: $(STAMP)
	$(PY) -m ruff check --fix keras_lm tests examples bench
	$(PY) -m ruff format keras_lm tests examples bench

bench: $(STAMP)
	$(PY) -m bench.run_all

demo: $(STAMP)
	$(PY) -m examples.translate_en_fr.main --preset tiny --minutes 8 --output-dir runs/translate_en_fr

clean:
	rm -rf $(VENV) runs build dist *.egg-info
