# Two commands for a fresh machine (see README):
#   make lab    set up, then open JupyterLab on notebooks/
#   make test   set up, then run the whole test suite (browser test included)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch. On this project's machines `torch==2.13.0` resolves to
# a local CPU wheel; elsewhere set TORCH_INDEX=https://download.pytorch.org/whl/cpu
# so pip does not fetch a multi-GB CUDA build.
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: setup lab test test-fast browser-deps benchmark clean

setup: $(VENV)/.fedlab-installed

$(VENV)/.fedlab-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

lab: setup
	$(BIN)/jupyter lab notebooks/

# Debian's Chromium for the browser test (Playwright's own browser download
# does not work offline). Installs only when missing and we may use apt.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found and no root: the browser test will be skipped"; fi; }

test: setup browser-deps
	$(BIN)/python -m pytest -q

# Everything but the notebooks and the browser: seconds, for the edit loop.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not browser and not notebooks"

benchmark: setup
	$(BIN)/python benchmarks/bench_local_training.py

clean:
	rm -rf $(VENV) *.egg-info
