# Every target creates (once) and reuses a local virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PLUGIN_DIRS := $(wildcard plugins/*)

.PHONY: install demo test lint layers bench clean

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
	$(VENV)/bin/routilux run examples/flows/std_orders.yaml
	@echo "--- std_output/std_orders.jsonl (written by std.write_jsonl):"
	@cat std_output/std_orders.jsonl

test: $(STAMP) layers
	$(PY) -m pytest -q

# The import-layer contracts (docs/architecture.md): layers, then no cycle inside a layer.
layers: $(STAMP)
	$(VENV)/bin/lint-imports --no-logo --no-cache pyproject.toml
	$(VENV)/bin/lint-imports --no-logo --no-cache .importlinter-cycles

lint: $(STAMP) layers
	$(VENV)/bin/ruff check routilux_kernel tests bench examples plugins testsupport conftest.py
	$(VENV)/bin/ruff format --check routilux_kernel
	$(VENV)/bin/mypy routilux_kernel

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info
