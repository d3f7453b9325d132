# browser-worker: `make run` starts the worker, `make test` runs every test.
SHELL := /bin/bash
CARGO ?= cargo
TMPDIR_PATTERN := $(or $(TMPDIR),/tmp)/\.tmp

.PHONY: deps build run test lint bench openapi fmt fuzz demo ts-example corpus

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release

## Starts the worker on 127.0.0.1:8080 with state in ./data (prints a generated API key once).
run: deps
	$(CARGO) run --release --bin browser-worker

## The whole test suite: real Chromium against fixture pages on 127.0.0.1.
test: deps
	$(CARGO) test --no-fail-fast
	@# The matrix: the session, forms, isolation, takeover, proxy and task tests again with
	@# ephemeral sessions as browser contexts in shared browsers (BW_EPHEMERAL_MODE=context).
	BW_TEST_EPHEMERAL_MODE=context $(CARGO) test --test integration -- \
	  sessions:: forms:: isolation:: takeover:: live:: cdp:: proxies:: tasks::
	@# Browsers of test workers run with a user-data dir under a temp dir: none may survive.
	@if pgrep -a -f -- '--user-data-dir=$(TMPDIR_PATTERN)'; then echo "make test: Chromium processes were left behind" >&2; exit 1; fi
	@# Displays of test workers (Xvfb + x11vnc on :100 and up) stop with their sessions.
	@if pgrep -a -f -- '^(Xvfb :1[0-9]{2,} -screen 0 1920x1080x24|x11vnc -display :1[0-9]{2,} -unixsock)'; then echo "make test: Xvfb or x11vnc processes were left behind" >&2; exit 1; fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Session-create latency against a bare chromiumoxide launch, worker memory per session and
## over create/delete cycles, the VNC bridge against websockify and the CDP passthrough against
## a direct connection; writes BENCHMARKS.md.
bench: deps
	{ echo "# Benchmarks"; echo; echo "Produced by \`make bench\` on the machine named in each section."; echo; \
	  $(CARGO) bench --bench session_create && echo && $(CARGO) bench --bench session_memory && echo && \
	  $(CARGO) bench --bench forms && echo && scripts/corpus.sh table && echo && $(CARGO) bench --bench access && echo && \
	  $(CARGO) bench --bench live_view && echo && $(CARGO) bench --bench fleet && echo && $(CARGO) bench --bench recording; } > BENCHMARKS.md.new
	mv BENCHMARKS.md.new BENCHMARKS.md
	@cat BENCHMARKS.md

## The real captured pages of shared/corpus, gated on the Forms III targets (runs in CI).
corpus: deps
	scripts/corpus.sh check

## Regenerates api-spec/openapi.json from the handlers.
openapi:
	UPDATE_OPENAPI=1 $(CARGO) test --test integration openapi

fmt:
	$(CARGO) fmt --all

# Schemathesis against a live worker: no 5xx, every answer as documented (runs in CI).
fuzz: deps
	scripts/fuzz.sh

## Steps one session through the bundled demo job form (examples/demo/), printing each step.
demo: deps
	$(CARGO) run --example demo

## The TypeScript orchestrator example against a live worker: session API, V1 task, webhooks.
ts-example: deps
	examples/ts-orchestrator/ci.sh
