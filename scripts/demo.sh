#!/usr/bin/env bash
# The demo: replays the bundled sample captures and writes Parquet to ./out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked --bin mirador
exec target/release/mirador replay --out out "$@" pcaps
