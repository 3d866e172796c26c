# Thin wrapper over Meson + Ninja. `make run` and `make test` work on a fresh Debian 12 machine.
BUILD ?= build
SANBUILD ?= build-san
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

run: all
	@scripts/run $(ARGS)

# Every test: unit + integration under ASan/UBSan, then the browser tests against the normal build.
test: test-deps all $(SANBUILD)/build.ninja
	$(NINJA) -C $(SANBUILD)
	@scripts/run-tests $(SANBUILD) $(BUILD)

bench: all
	@scripts/run-bench $(BUILD)

fuzz: deps
	CC=clang $(MESON) setup build-fuzz -Dfuzz=true -Db_sanitize=address -Db_lundef=false 2>/dev/null || true
	$(NINJA) -C build-fuzz
	@for f in build-fuzz/fuzz/fuzz-*; do \
		[ -f "$$f" ] && [ -x "$$f" ] || continue; \
		name=$${f##*/fuzz-}; \
		echo "fuzzing $$name for 60 s (new inputs in build-fuzz/corpus-$$name)"; \
		mkdir -p build-fuzz/corpus-$$name; \
		$$f -max_total_time=60 build-fuzz/corpus-$$name fuzz/corpus/$$name || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(SANBUILD) build-fuzz
