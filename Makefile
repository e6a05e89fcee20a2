# Two commands do all set-up on a fresh Linux machine:
#   make book        # venv + install + execute stale chapters + build _build/html/index.html
#   make test        # venv + install + the whole test suite
#   make test-unit   # the fast tier: unit tests, stored-run checks, ruff and mypy (no chapter
#                    # executed, no book built, no browser; pytest markers in pyproject.toml)
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.cnnbook-installed
CHAPTERS = $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb)) $(sort $(wildcard notebooks/A[0-9]_*.ipynb))

.PHONY: setup book execute html test test-unit test-nbval check-stale clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (cnnbook)"
	touch $(STAMP)

# Execute only the chapters whose stored outputs are missing or stale, then build the HTML.
execute: setup
	PYTHONPATH=tools $(PY) -m bookbuild execute $(CHAPTERS)

html: setup $(if $(filter book,$(MAKECMDGOALS)),execute)
	$(VENV)/bin/jupyter-book build . -W --keep-going

book: execute html
	@echo "Open _build/html/index.html"

check-stale: setup
	PYTHONPATH=tools $(PY) -m bookbuild check $(CHAPTERS)

# The whole suite: unit tests, chapters executed with CI parameters, the book build,
# then nbval on CI-parameterised copies of the chapters (cells marked NBVAL_CHECK_OUTPUT).
test: setup
	$(PY) -m pytest tests
	$(MAKE) test-nbval

# Everything but the markers notebook (executes chapters), book (builds the HTML) and browser;
# a chapter module's tests that execute nothing (the stored full run's checks) are marked stored.
UNIT_MARKERS = (not notebook and not book and not browser) or stored

test-unit: setup
	$(PY) -m pytest tests -m "$(UNIT_MARKERS)"

# The copies live in _build/ci/notebooks, beside a link to book/, so relative paths still work.
# pytest's cache goes under _build (pyproject.toml sets cache_dir for the unit tests), never into
# a folder the book is built from.
test-nbval: setup
	rm -rf _build/ci && mkdir -p _build/ci/models
	ln -s ../../book _build/ci/book
	PYTHONPATH=tools $(PY) -m bookbuild prepare-ci notebooks _build/ci/notebooks
	cd _build/ci/notebooks && CNNBOOK_MODEL_DIR=$(CURDIR)/_build/ci/models \
	  $(CURDIR)/$(PY) -m pytest --nbval-lax -o cache_dir=$(CURDIR)/_build/ci/.pytest_cache --rootdir=. .

clean:
	rm -rf _build
