# Each target works on a fresh machine with only Python 3.10+: it creates .venv
# when missing and installs skssl with what the target needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Pinned so every machine gets the same PyTorch. From PyPI on Linux this pin is
# the CUDA build (a large download); CPU-only machines get the CPU wheel of the
# same version with:
#   make TORCH_PIN="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
# Users install plain `pip install skssl` (see doc/install.rst).
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test lint docs bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[test,datasets]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/skssl demo

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check skssl tests examples benchmarks
	$(PY) -m ruff format --check skssl tests examples benchmarks

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[docs]"
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[bench]"
	touch $@

# Warnings are errors, and the gallery executes every example, so a broken
# example or docstring fails the build (and CI, which runs this target).
docs: $(VENV)/.installed-docs
	$(PY) -m sphinx -W --keep-going -b html doc doc/_build/html

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/bench_accuracy.py
	$(PY) benchmarks/bench_scaling.py
	$(PY) benchmarks/bench_deep.py
	$(PY) benchmarks/bench_tabular.py --targets --evidence
	$(PY) benchmarks/bench_mean_teacher.py --compare --ablation
	$(PY) benchmarks/bench_cclp.py
	$(PY) benchmarks/bench_io.py --read --label

clean:
	rm -rf doc/_build doc/auto_examples doc/generated doc/sg_execution_times.rst .pytest_cache
