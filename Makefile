# Thin wrapper over Meson + Ninja. `make run` and `make test` work on a fresh Debian 12 machine.
BUILD ?= build
SANBUILD ?= build-san
CLANGBUILD ?= build-clang
MESON ?= meson
NINJA ?= ninja

.PHONY: all deps test-deps run test unit integration e2e bench fuzz clean

all: deps $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps --test

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --buildtype=debugoptimized

# The test build: AddressSanitizer + UndefinedBehaviorSanitizer.
$(SANBUILD)/build.ninja:
	$(MESON) setup $(SANBUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

# The clang build: only built (by scripts/run-tests), to catch clang's warnings (-Werror).
$(CLANGBUILD)/build.ninja:
	CC=clang $(MESON) setup $(CLANGBUILD) --buildtype=debug

run: all
	@scripts/run $(ARGS)

# Every test: unit + integration + style under ASan/UBSan, the unit suite under valgrind on the
# normal build, a warning-free clang build, then the browser tests against the normal build.
test: test-deps all $(SANBUILD)/build.ninja $(CLANGBUILD)/build.ninja
	$(NINJA) -C $(SANBUILD)
	@scripts/run-tests $(SANBUILD) $(BUILD) $(CLANGBUILD)

bench: all
	@scripts/run-bench $(BUILD)

# libFuzzer (clang): the whole tree instrumented, ASan + UBSan; FUZZ_SECONDS per target. Inputs
# that add coverage are merged back into fuzz/corpus/NAME; a summary table ends the run.
FUZZ_SECONDS ?= 60
FUZZBUILD ?= build-fuzz
FUZZ_OPTS = -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false

fuzz: deps
	@if [ -f $(FUZZBUILD)/build.ninja ]; then $(MESON) configure $(FUZZBUILD) $(FUZZ_OPTS); \
	else CC=clang $(MESON) setup $(FUZZBUILD) --buildtype=debug $(FUZZ_OPTS); fi
	$(NINJA) -C $(FUZZBUILD)
	@fuzz/run-all $(FUZZBUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(SANBUILD) $(CLANGBUILD) build-fuzz
