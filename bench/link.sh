#!/bin/sh
# The CH9329 link against an instantly-ACKing fake chip on a pty (bench/bench_link.c).
exec "$OKVM_BUILD/bench/bench-link"
