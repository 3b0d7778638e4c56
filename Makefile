# imguard: `make run` serves both functions locally, `make test` runs the suite,
# `make build` makes the SCF upload folders that `serverless deploy` ships.
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed-stamp
HOST       ?= 127.0.0.1
PORT       ?= 9000
DEMO_PORT  ?= 9077
SCF_PYTHON ?= 3.9

.PHONY: console run test compat bench build layer lock demo venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	RULES_PATH=$${RULES_PATH:-rules.example.yaml} $(BIN)/python -m imguard serve --host $(HOST) --port $(PORT)

# The web console over make run's audit store (or AUDIT_DSN), on http://127.0.0.1:8800/.
console: $(STAMP)
	$(BIN)/python -m imguard console --port $${CONSOLE_PORT:-8800}

# SCF has no Python newer than 3.10: anything the code uses must exist in 3.9.
compat: $(STAMP)
	$(BIN)/vermin --target=3.9- --violations --eval-annotations --no-tips -q shared functions scripts tests bench

# The pinned deploy CLI (package.json): tests/test_serverless_cli.py loads functions/ through its own code.
NPM        := $(shell command -v npm 2>/dev/null)
NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

test: $(STAMP) compat $(if $(NPM),$(NODE_STAMP))
	$(BIN)/python -m pytest

# Prints the figures README quotes; about six minutes (LOAD_SECONDS=60 of it the HTTP load run, ~3 min the
# cold starts on the built folder under Python 3.9 and 3.10).
bench: $(STAMP)
	$(BIN)/python bench/bench_rules.py
	$(BIN)/python bench/bench_callback.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/bench_counters.py
	$(BIN)/python bench/bench_profile.py
	$(BIN)/python bench/bench_cold_start.py

# RULES: the rules file the functions carry (default rules.yaml; RULES=none for none). The build is
# started on SCF_PYTHON itself (pyenv's) before it is called done.
build: $(STAMP)
	$(BIN)/python scripts/build_scf.py --python $(SCF_PYTHON) $(if $(RULES),--rules $(RULES))

layer: $(STAMP)
	$(BIN)/python scripts/build_scf.py --python $(SCF_PYTHON) --layer $(if $(RULES),--rules $(RULES))

# One hashed lock per SCF runtime, resolved for its Python (Requires-Python honoured) and platform.
# Binary wheels only, but for the two dependencies that publish nothing else (built pure by make build).
lock: $(STAMP)
	for version in 3.9 3.10; do \
		$(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --custom-compile-command "make lock" \
			--python-version $$version --python-platform x86_64-manylinux2014 \
			--only-binary :all: --no-binary crcmod --no-binary tls-sig-api-v2 \
			-o requirements/scf-py$$(echo $$version | tr -d .).txt || exit 1; \
	done

# Serve both functions with the local cloud, replay the demo (allow, block, rewrite, CI's block, a withdrawal,
# a mute) and every recorded IM callback, then stop. Its own store: make run's is left alone.
DEMO_DSN := sqlite:///.imguard/demo.db
demo: $(STAMP)
	@mkdir -p .imguard && rm -f .imguard/demo.db
	@AUDIT_DSN=$(DEMO_DSN) RULES_PATH=tests/events/demo/rules.yaml $(BIN)/python -m imguard serve --host 127.0.0.1 \
		--port $(DEMO_PORT) > .imguard/demo-server.log 2>&1 & pid=$$!; \
	AUDIT_DSN=$(DEMO_DSN) $(BIN)/python -m imguard replay tests/events/demo --url http://127.0.0.1:$(DEMO_PORT)/im_callback --wait 15; \
	status=$$?; sleep 3; kill $$pid; \
	echo; echo "What happened after the answers (CI's verdict on the sound, the mute):"; \
	AUDIT_DSN=$(DEMO_DSN) $(BIN)/python -m imguard audit list --limit 4; \
	echo; echo "All of it is in .imguard/demo.db. See it in the console:  AUDIT_DSN=$(DEMO_DSN) $(BIN)/imguard console"; \
	echo "The review queue:  AUDIT_DSN=$(DEMO_DSN) $(BIN)/imguard review list"; \
	exit $$status

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis .imguard
