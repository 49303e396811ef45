# kverify: the README's two commands are `make demo` and `make test`; both bootstrap first.
.PHONY: setup build test demo bench lint clean fuzz

SWIFT ?= swift
# helm (installed by the bootstrap into .tools/bin) for --chart runs and the chart tests.
export PATH := $(CURDIR)/.tools/bin:$(PATH)

setup:
	bash scripts/bootstrap.sh

build:
	$(SWIFT) build

# The CLI tests run the built binary, so build before testing.
test: setup
	$(SWIFT) build
	$(SWIFT) test

demo: setup
	bash scripts/demo.sh

bench: setup
	bash scripts/bench/run_all.sh

lint:
	shellcheck scripts/*.sh scripts/*/*.sh .ci/run

clean:
	rm -rf .build .build-release

# libFuzzer harnesses (Fuzz/, a separate package) for every parser, FUZZ_SECONDS each (default 60).
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh
