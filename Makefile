# Every target creates (once) and reuses a local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PLUGIN_DIRS := $(wildcard plugins/*)

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' $(foreach d,$(PLUGIN_DIRS),-e ./$(d))
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/routilux validate examples/flows/word_count.yaml
	$(VENV)/bin/routilux graph examples/flows/word_count.yaml --format mermaid
	$(VENV)/bin/routilux run examples/flows/word_count.yaml --jobs 3

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check routilux_kernel tests bench examples
	$(VENV)/bin/ruff format --check routilux_kernel
	$(VENV)/bin/mypy routilux_kernel

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info
