#!/usr/bin/env bash
# Installs what mirador's build, demo and tests need, and nothing that is
# already there. Safe to run again. Debian 12 (bookworm) or later, as root or
# with sudo.
#   scripts/setup.sh          build dependencies and test oracles
#   scripts/setup.sh --build  build dependencies only (the demo, the Dockerfile)
set -euo pipefail
cd "$(dirname "$0")/.."

build_only=0
[ "${1:-}" = "--build" ] && build_only=1

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
hyperscan=libhyperscan-dev
[ "$arch" = "amd64" ] || hyperscan=libvectorscan-dev

packages=(build-essential pkg-config clang libclang-dev libdpdk-dev "$hyperscan" libpcap-dev)
if [ "$build_only" -eq 0 ]; then
  # A Java runtime for Spark, which reads the exported lake in a test.
  packages+=(tshark tcpflow tcpreplay iproute2 python3 python3-venv systemd prometheus curl
             openjdk-17-jre-headless)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo_cmd debconf-set-selections
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
fi

if [ "$build_only" -eq 0 ]; then
  # Test oracles read our Parquet (DuckDB, pyarrow), compute Community IDs,
  # validate EVE JSON, and serve and list S3 (moto, boto3); matplotlib draws
  # the soak's plot; pyspark reads the exported lake as Spark users do.
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import duckdb, pyarrow, pytest, communityid, jsonschema, boto3, moto, matplotlib, pyspark" 2>/dev/null; then
    echo "setup: creating .venv with the test oracles of scripts/requirements-test.txt"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r scripts/requirements-test.txt
  fi
fi
