# ckpt: top-level entry points. Both targets install what is missing on a
# Debian 12 machine (as root) and are idempotent.
#   make demo   build ckpt and run `ckpt demo`
#   make test   the whole test suite (fmt, clippy, unit, end-to-end)
#   make bench  speed figures against DESIGN 7
#   make fuzz   fuzz the image reader (FUZZ_SECONDS=600)
#   make fuzz-memory  fuzz the bounded decoder's peak memory (FUZZ_SECONDS=600)
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: deps demo test bench fuzz fuzz-memory

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
	./scripts/bench.sh

# Coverage-guided fuzzing of the image reader (AddressSanitizer, needs
# cargo-fuzz from crates.io; RUSTC_BOOTSTRAP stands in for nightly).
FUZZ_SECONDS ?= 600
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	mkdir -p fuzz/corpus/verify_image_fixed_digests
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run verify_image_fixed_digests corpus/verify_image_fixed_digests seeds/verify_image -- -max_total_time=$(FUZZ_SECONDS)

# Peak memory of the bounded decoder (issue 7 item 6): the target aborts
# when one input allocates more than 2 x its length + its schema's
# structure bound + 1 MiB (docs/image-format.md, "Limits"); libFuzzer's
# -malloc_limit_mb (largest single allocation) and -rss_limit_mb (whole
# process) are a second net.
fuzz-memory:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	mkdir -p fuzz/corpus/bounded_decode
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run bounded_decode corpus/bounded_decode -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=512 -malloc_limit_mb=256
