# ckpt: top-level entry points. Both targets install what is missing on a
# Debian 12 machine (as root) and are idempotent.
#   make demo   build ckpt and run `ckpt demo`
#   make test   the whole test suite (fmt, clippy, unit, end-to-end)
#   make bench  speed figures against DESIGN 7
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: deps demo test bench fuzz

deps:
	@./scripts/install-deps.sh

demo: deps
	$(CARGO) build --release -p ckpt-cli
	./target/release/ckpt demo

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --release -p ckpt-cli
	CKPT_BIN=$(CURDIR)/target/release/ckpt $(CARGO) test --workspace --release

bench: deps
	$(CARGO) build --release -p ckpt-cli -p ckpt-core
	./scripts/bench.sh
