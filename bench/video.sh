#!/bin/sh
# Video figures: file-source latency and fps, virtual-screen render+encode cost and JPEG sizes.
set -eu
"$OKVM_BUILD/bench/bench-video" 30 3
