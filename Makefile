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
test: setup lint
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 tests
	$(TEST_ENV) $(NBVAL)
	fresh=$$(mktemp -d) && trap 'rm -rf "$$fresh"' EXIT && \
		$(TEST_ENV) ATEN_CPU_CAPABILITY=default REFDENSE_DATA="$$fresh" $(NBVAL)

# The package's style and types (settings in pyproject.toml).
lint: setup
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

unit: setup
	$(TEST_ENV) $(BIN)/python -m pytest -n 2 tests

# The ranges of pyproject.toml, proven: a second venv with the oldest torch CI can install (2.13.0, a
# CPU build) resolves the package's other requirements from their ranges, installs the package from
# this clone (not editable) and runs the fast unit tests (-m "not slow") against it, from tests/ so
# that the installed package is the one imported.
COMPAT := .venv-compat
COMPAT_TORCH := 2.13.0
$(COMPAT)/.installed: pyproject.toml Makefile
	rm -rf $(COMPAT) && $(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --disable-pip-version-check -q torch==$(COMPAT_TORCH)
	$(COMPAT)/bin/python -m pip install --disable-pip-version-check -q ".[course,video,text]" pytest-xdist torch==$(COMPAT_TORCH)
	@touch $@

compat: $(COMPAT)/.installed
	$(COMPAT)/bin/python -c 'import torch; assert torch.__version__.startswith("$(COMPAT_TORCH)"), torch.__version__'
	cd tests && $(TEST_ENV) ../$(COMPAT)/bin/python -m pytest -n 2 -m "not slow" -p no:cacheprovider --rootdir .. -c ../pyproject.toml .

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
