# Two entry points: `make study` (install + run the main job) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GPAW_SKIPPED := $(VENV)/gpaw-skipped
STUDY_ARGS ?= --quick
PYTEST_ARGS ?=

.PHONY: install study test test-slow lint clean

# GPAW (the `dft` extra) compiles against libxc and OpenBLAS (Debian packages) and, with GPAW
# 26.7, as C++. scripts/install_plan.py decides: as root with the packages missing it installs
# them; without root it installs everything else and writes why GPAW was skipped to
# $(GPAW_SKIPPED) (printed by `make test` beside the skipped GPAW tests). The main job never needs GPAW.
$(STAMP): pyproject.toml constraints.txt scripts/install_plan.py
	@plan="$$($(PY) scripts/install_plan.py)" || exit 1; eval "$$plan"; set -e; \
	if [ "$$APT" = 1 ]; then \
	  echo "apt-get install $$PACKAGES (GPAW's build needs them)"; \
	  (apt-get update -qq && apt-get install -y -qq $$PACKAGES) || { EXTRAS=$$NO_DFT_EXTRAS; NOTE=$$APT_FAILED_NOTE; }; \
	fi; \
	echo "$(PY) -m venv $$VENV_FLAGS $(VENV)"; $(PY) -m venv $$VENV_FLAGS $(VENV); \
	$(BIN)/pip install -q --upgrade pip; \
	echo "pip install torch==2.13.0"; $(BIN)/pip install -q torch==2.13.0; \
	echo "pip install -e '.[$$EXTRAS]'"; CC=g++ $(BIN)/pip install -q -c constraints.txt -e ".[$$EXTRAS]"; \
	if [ -n "$$NOTE" ]; then echo "$$NOTE" > $(GPAW_SKIPPED); echo "note: $$NOTE"; else rm -f $(GPAW_SKIPPED); fi; \
	touch $(STAMP)

install: $(STAMP)

study: $(STAMP)
	$(BIN)/ncmflow study $(STUDY_ARGS)

test: $(STAMP)
	$(BIN)/ruff check ncmflow tests benchmarks
	$(BIN)/pytest -q -rs $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/pytest -q -rs -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check ncmflow tests benchmarks

clean:
	rm -rf $(VENV) ncmflow_data report
