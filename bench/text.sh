#!/bin/sh
# Text planner: throughput and reports per character (bench/bench_text.c).
set -eu
"$OKVM_BUILD/bench/bench-text"
