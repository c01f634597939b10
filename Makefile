# sae-search: `make run` builds the demo index if needed and serves it; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
INDEX  ?= data/index
CORPUS ?= data/demo_abstracts.parquet
EMB    ?= data/demo_embeddings.npy
TORCH_INDEX ?=
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1

.PHONY: install run index test test-fast bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first (a looser requirement would pull gigabytes of CUDA packages). This project's
	# machines hold the CPU wheel where pip finds it; elsewhere give TORCH_INDEX=https://download.pytorch.org/whl/cpu.
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

index: install
	$(VENV)/bin/sae-search build --corpus $(CORPUS) --embeddings $(EMB) --out $(INDEX) --if-stale

run: index
	SAE_SEARCH_INDEX_DIR=$(INDEX) $(VENV)/bin/sae-search serve --index $(INDEX) --host 127.0.0.1 --port $(PORT)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/search_latency.py

clean:
	rm -rf $(INDEX) .pytest_cache
