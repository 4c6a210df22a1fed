# seqrec: `make book` (set up, run the main job, build the book) and `make test` (set up, pass the tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= paper
TRAIN ?= none
TORCH_SPEC ?= torch==2.13.0
SHARED_DATA := $(abspath ../shared/data/s3rec)
ifneq ($(wildcard $(SHARED_DATA)/LastFM.txt),)
export SEQREC_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: setup test book clean-book bench
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" -e ".[test]"
	touch $@

test: setup
	$(PY) -m pytest -q

book: setup
	$(PY) -m seqrec.book build --profile $(PROFILE) --train $(TRAIN)

bench: setup
	$(PY) benchmarks/bench_epoch.py

clean-book:
	rm -rf _build book/generated
