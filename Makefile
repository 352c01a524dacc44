# Two commands matter: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export QT_API := pyside6

.PHONY: run test lint typecheck layers pytest bench bench-peers clean venv system-deps screenshots \
	package package-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash .ci/system-deps

# The embedded default: the default workspace with a local folder as its backup target, so
# every button works with no account; the first window offers the set-up wizard (sources,
# another folder or Google Drive, S3, schedule).
DEFAULT_TARGET ?= $(HOME)/.local/share/tierkeeper-backup
run: system-deps venv
	@$(BIN)/tierkeeper target list --json 2>/dev/null | grep -q '"name"' || \
	  $(BIN)/tierkeeper target add folder local "$(DEFAULT_TARGET)" || true
	$(BIN)/tierkeeper gui

lint: venv
	$(BIN)/ruff check core gui tests
	$(BIN)/ruff format --check core gui tests

typecheck: venv
	$(BIN)/mypy

layers: venv
	$(BIN)/lint-imports

pytest: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest -q -p no:cacheprovider

test: system-deps venv lint typecheck layers pytest

bench: system-deps venv
	$(BIN)/python -m tests.benchmarks.run --out docs/BENCHMARKS.md

# Tierkeeper beside restic, rclone and borg (../shared/bench/peers.sh, minutes); `make bench`
# then shows the newest result from docs/bench-results/.
bench-peers: venv
	bash tests/benchmarks/peers_tierkeeper.sh

screenshots: system-deps venv
	bash .ci/screenshots

# Installers into packaging/dist/ (gitignored): wheel + sdist, the PyInstaller one-folder
# bundle, and the .deb wrapping it (packaging/README.md). A few minutes; not part of `test`.
PACKAGE_STAMP := $(VENV)/.package-installed
$(PACKAGE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[test,package]'
	touch $(PACKAGE_STAMP)

package: system-deps $(PACKAGE_STAMP)
	rm -rf packaging/dist
	$(BIN)/python -m build --outdir packaging/dist .
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath packaging/dist \
		--workpath packaging/build/pyinstaller packaging/tierkeeper.spec
	$(BIN)/python packaging/build_deb.py

# As root: dpkg -i the .deb, use it (CLI, daemon, S3 target, the window via its desktop
# entry, a screenshot in packaging/dist/package-test/), dpkg -r, check what is left.
package-test: system-deps venv
	bash packaging/package_test.sh

clean:
	rm -rf $(VENV) build dist *.egg-info packaging/dist packaging/build
