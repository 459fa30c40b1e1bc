# Two entry points: `make study` (install + run the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install study test test-slow lint clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[mlip,hpc,test]'
	touch $(STAMP)

install: $(STAMP)

study: $(STAMP)
	mkdir -p models
	for kind in linio2 li05nio2 ncm811 slab cpan interface; do $(BIN)/ncmflow build $$kind -o models/$$kind.json; done
	for model in bulk bare cpan; do $(BIN)/ncmflow build migration --model $$model -o models/hop_$$model; done

test: $(STAMP)
	$(BIN)/ruff check ncmflow tests benchmarks
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check ncmflow tests benchmarks

clean:
	rm -rf $(VENV) ncmflow_data report
