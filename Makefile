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
# The library example (Examples/DaemonSetOnSim, its own package) is built here, before the tests, not inside the
# test run: compiling NIO beside the sim-heavy suites starves their probes. ExampleTests then rebuilds it as a no-op.
# scripts/test_watchdog.py passes the output through and turns a hung test into a failure that names it (no test
# ended for 15 minutes), where CI would otherwise say nothing until its own time limit.
test: setup
	$(SWIFT) build
	$(SWIFT) build --package-path Examples/DaemonSetOnSim --scratch-path .build-examples
	python3 scripts/test_watchdog.py -- $(SWIFT) test
	# The sim's contract suite once more over HTTP/1.1 (the sim offers no h2): both backends and kubectl.
	KVERIFY_CONTRACT_HTTP1=1 python3 scripts/test_watchdog.py -- $(SWIFT) test --skip-build --filter SimContractTests

demo: setup
	bash scripts/demo.sh

bench: setup
	bash scripts/bench/run_all.sh

lint:
	shellcheck scripts/*.sh scripts/*/*.sh .ci/run

clean:
	rm -rf .build .build-release .build-examples

# libFuzzer harnesses (Fuzz/, a separate package) for every parser, FUZZ_SECONDS each (default 60), FUZZ_JOBS at a time.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) bash scripts/fuzz.sh
