# ckpt: top-level entry points. Both targets install what is missing on a
# Debian 12 machine (as root) and are idempotent.
#   make demo   build ckpt and run `ckpt demo`
#   make test   the whole test suite (fmt, clippy, unit, end-to-end, VM)
#   make vm-test  the VM scenarios only: Debian's kernel under qemu, one boot
#               per LSM stack (docs/vm-tests.md; VM_STACKS="apparmor selinux")
#   make bench  speed figures against DESIGN 7
#   make fuzz   fuzz the image reader (FUZZ_SECONDS=600)
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: deps demo test vm-test bench fuzz

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
	./tests/vm/run.sh $(VM_STACKS)

VM_STACKS ?=
vm-test: deps
	./tests/vm/run.sh $(VM_STACKS)

bench: deps
	./scripts/bench.sh

# Coverage-guided fuzzing of the image reader (AddressSanitizer, needs
# cargo-fuzz from crates.io; RUSTC_BOOTSTRAP stands in for nightly).
FUZZ_SECONDS ?= 600
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	mkdir -p fuzz/corpus/verify_image_fixed_digests
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run verify_image_fixed_digests corpus/verify_image_fixed_digests seeds/verify_image -- -max_total_time=$(FUZZ_SECONDS)
