#!/usr/bin/env bash
# The whole test suite: unit and integration tests (cargo), then the
# end-to-end tests that check mirador against tshark, DuckDB and pyarrow.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The checkout's defaults, whatever configuration this machine has installed.
export MIRADOR_CONFIG=""
cargo build --workspace --locked
cargo test --workspace --locked
MIRADOR_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/mirador" .venv/bin/python -m pytest -q -rs tests/e2e
