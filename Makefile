# Two commands are the contract (see README): `make demo` and `make test`.
# Both create .venv when it is missing and install the pinned requirements and the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Nothing downloads at test time; notebooks run their default (smoke) profile. Tests run on two
# pytest workers, one thread each (two threads per worker oversubscribe a 2-core machine).
# nbval keeps each notebook on one worker (--dist loadfile): its cells depend on each other.
TEST_ENV := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg PYTHONHASHSEED=0 OMP_NUM_THREADS=1

.PHONY: setup demo test lint unit compat notebooks book lab restore-notebooks clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)

demo: setup
	$(BIN)/refdense demo

NBVAL := $(BIN)/python -m pytest -n 2 --dist loadfile --nbval-lax --nbval-current-env \
	--nbval-sanitize-with notebooks/sanitize.cfg --durations=0 notebooks

# The notebooks run twice: with this CPU's best kernels on the shared data cache, then with the
# portable kernel set (ATEN_CPU_CAPABILITY=default: floats differ in the last bits, as on another
# CPU) on freshly generated data in a temporary folder, so that no checked output depends on the
# machine or on what ran before.
# The compat venv (below) installs in the background meanwhile: its download (about 3 GB of torch)
# waits on the network, not on the two cores the tests use.
test: setup lint
	@mkdir -p build
	$(MAKE) --no-print-directory $(COMPAT)/.installed > build/compat-install.log 2>&1 & install=$$!; \
	fresh=$$(mktemp -d); trap 'rm -rf "$$fresh"' EXIT; \
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 tests && $(TEST_ENV) $(NBVAL) && \
		$(TEST_ENV) ATEN_CPU_CAPABILITY=default REFDENSE_DATA="$$fresh" $(NBVAL); tests=$$?; \
	wait $$install; installed=$$?; cat build/compat-install.log; \
	[ $$tests = 0 ] && [ $$installed = 0 ]
	$(MAKE) --no-print-directory compat

# The package's style and types (settings in pyproject.toml).
lint: setup
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

unit: setup
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 tests

# The ranges of pyproject.toml, proven (README, "What CI proves"): a second venv, with the oldest
# Python and torch the package admits, resolves the package's other requirements from their ranges
# (every extra), and runs the fast unit tests against the package installed from this clone (not
# editable: from tests/, so that the installed copy is the one imported). The venv is made afresh
# when this file changes (the Python or torch chosen here) and resolved again in place when
# pyproject.toml changes; the package itself is reinstalled every time (a few seconds). Tests
# marked `clone` read the repository's own files through the package (they need it run from a
# clone), `slurm` starts a cluster, `slow` as above.
# Python 3.10 is python3.10 on the PATH or pyenv's; without either, this Python (a notice says so).
COMPAT := build/compat-venv
COMPAT_TORCH := 2.6.0
COMPAT_PYTHON ?= $(firstword $(foreach p,python3.10 $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10),\
	$(shell $(p) -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && echo $(p))) $(PYTHON))
COMPAT_PIP := $(COMPAT)/bin/python -m pip install --disable-pip-version-check -q
$(COMPAT)/.made: Makefile
	rm -rf $(COMPAT) && $(COMPAT_PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -c 'import sys; sys.version_info[:2] == (3, 10) or print(f"compat: no Python 3.10 found, proving the ranges with Python {sys.version.split()[0]}")'
	$(COMPAT_PIP) "setuptools>=68" wheel
	@touch $@

$(COMPAT)/.installed: $(COMPAT)/.made pyproject.toml
	$(COMPAT_PIP) torch==$(COMPAT_TORCH) ".[course,video,text,cluster,book]" pytest-xdist
	@touch $@

compat: $(COMPAT)/.installed
	$(COMPAT_PIP) --no-deps --no-build-isolation --force-reinstall .
	$(COMPAT)/bin/python -c 'import sys, torch; print(f"compat: Python {sys.version.split()[0]}, torch {torch.__version__}")'
	cd tests && $(TEST_ENV) ../$(COMPAT)/bin/python -m pytest -n 2 -m "not slow and not clone and not slurm and not course" \
		-p no:cacheprovider --rootdir .. -c ../pyproject.toml .

notebooks: setup
	$(TEST_ENV) $(BIN)/python -m refdense.course.execute notebooks

# The course website in site/ (refdense/course/book.py): built offline from the stored notebooks.
book: setup
	$(BIN)/python -m refdense.course.book

# JupyterLab saves notebooks without widget views or state (they cannot be restored on reopening).
# JupyterLab refuses to run as root (a Docker container) unless told --allow-root; only then is it added.
lab: setup
	$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) --ContentsManager.pre_save_hook=refdense.course.storage.pre_save_hook notebooks

# After exploring: the committed notebooks back, the learner's copies kept under runs/notebook-backup/.
restore-notebooks: setup
	$(BIN)/python -m refdense.course.storage

clean:
	rm -rf $(VENV) $(COMPAT) site runs data/synthetic .pytest_cache
