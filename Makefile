# Two entry points: `make study` (install + run the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install study test test-slow lint clean

# GPAW compiles against libxc and OpenBLAS (Debian packages) and, with GPAW 26.7, as C++.
SYSTEM_PACKAGES := libxc-dev libopenblas-dev

$(STAMP): pyproject.toml constraints.txt
	dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $(SYSTEM_PACKAGES))
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	CC=g++ $(BIN)/pip install -q -c constraints.txt -e '.[mlip,dft,hpc,test]'
	touch $(STAMP)

install: $(STAMP)

study: $(STAMP)
	$(BIN)/ncmflow study --quick

test: $(STAMP)
	$(BIN)/ruff check ncmflow tests benchmarks
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check ncmflow tests benchmarks

clean:
	rm -rf $(VENV) ncmflow_data report
