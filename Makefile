# The README's two set-up commands: `make demo` and `make test`. Both create .venv
# when missing, install the pinned dependencies and build the extension; both are
# idempotent (stamp file + ninja's incremental build).

PYTHON_BOOT ?= python3.11
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.rustorch-installed
CPP_SOURCES := $(shell find cpp_ext -name '*.cpp' -o -name '*.h')
EXT         := rustorch_device/.built
PYTEST_ARGS ?=
DEMO_ARGS   ?=

.PHONY: all venv install build demo eager-demo test test-slow bench lint clean

all: build

$(PY):
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel ninja

$(STAMP): pyproject.toml setup.py | $(PY)
	$(PY) -m pip install torch==2.14.1 torchvision==0.29.1
	RUSTORCH_SKIP_EXT=1 $(PY) -m pip install --no-build-isolation -e '.[dev]'
	touch $@

venv install: $(STAMP)

$(EXT): $(STAMP) $(CPP_SOURCES)
	MAX_JOBS=$${MAX_JOBS:-2} $(PY) setup.py -q build_ext --inplace
	touch $@

build: $(EXT)

# Trains the MNIST CNN on rustorch (compiled with rust_backend), logs the run into runs/ and
# validates it. Data: --data/RUSTORCH_DATA, ./data, ../shared/data, else the shipped subset.
demo: build
	$(PY) examples/mnist_rustorch_demo.py --runs-dir runs $(DEMO_ARGS)
	$(PY) -m rustorch_tools validate runs/

# A small eager model on rustorch, printing native/fallback op counts.
eager-demo: build
	$(PY) examples/eager_privateuse1_demo.py

test: build
	$(PY) -m pytest $(PYTEST_ARGS)

# The long tests (full-MNIST accuracy goals, full epochs): run before resolving an issue that
# touches training.
test-slow: build
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

# Every benchmark prints JSON lines (ratio = ours / reference, load average, threads); the last
# step turns the rows with a goal into the markdown table kept in docs/performance.md.
BENCH_OUT ?= build/bench.jsonl
bench: build
	mkdir -p $(dir $(BENCH_OUT)) && : > $(BENCH_OUT)
	for b in benchmarks/*.py; do \
	  case $$b in */harness.py|*/summary.py) continue;; esac; \
	  $(PY) $$b | tee -a $(BENCH_OUT) || exit 1; \
	done
	$(PY) benchmarks/summary.py $(BENCH_OUT)

lint: $(STAMP)
	$(VENV)/bin/ruff check rustorch_device rustorch_tools tests examples benchmarks

clean:
	rm -rf build $(EXT) rustorch_device/*.so
