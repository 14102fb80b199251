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

.PHONY: setup demo test lint unit notebooks lab restore-notebooks clean

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

notebooks: setup
	$(TEST_ENV) $(BIN)/python -m refdense.course.execute notebooks

# JupyterLab saves notebooks without widget views or state (they cannot be restored on reopening).
# JupyterLab refuses to run as root (a Docker container) unless told --allow-root; only then is it added.
lab: setup
	$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) --ContentsManager.pre_save_hook=refdense.course.storage.pre_save_hook notebooks

# After exploring: the committed notebooks back, the learner's copies kept under runs/notebook-backup/.
restore-notebooks: setup
	$(BIN)/python -m refdense.course.storage

clean:
	rm -rf $(VENV) runs data/synthetic .pytest_cache
