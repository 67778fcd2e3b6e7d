#!/usr/bin/env bash
# The demo: runs the sensor on its embedded default, the bundled sample captures
# (ordinary traffic, the threat families, benign look-alikes) read through
# DPDK's net_pcap driver (no NIC, no hugepages), one queue each, with the
# bundled signatures; writes Parquet to ./out and prints the run summary. Extra arguments go to
# `mirador run` (e.g. --eal "..." for other devices).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build
export PATH="$HOME/.cargo/bin:$PATH"
# The checkout's defaults, whatever configuration this machine has installed.
export MIRADOR_CONFIG=""
cargo build --release --locked --bin mirador
exec target/release/mirador run --out out "$@"
