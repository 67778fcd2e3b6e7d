#!/usr/bin/env bash
# DPDK capture benchmark: DPDK's net_pcap driver with infinite_rx=1 loads the
# capture into mbufs once and then serves it endlessly at memory speed through
# the real ethdev receive API. Two runs of SECONDS each on one worker lcore:
#   1. --rx-only: receive bursts and free them (the capture path alone);
#   2. the full pipeline: decode, flows, reassembly, the rules in RULES, Parquet.
# It prints both rates per worker and their ratio.
#   scripts/bench-dpdk.sh [PCAP] [SECONDS] [RULES]
# PCAP defaults to ../shared/pcaps/ndpi-benign-mix.pcap (Ethernet pcap), SECONDS
# to 20, RULES (a rules file or folder) to signatures/.
set -euo pipefail
cd "$(dirname "$0")/.."
pcap=$(realpath "${1:-../shared/pcaps/ndpi-benign-mix.pcap}")
seconds=${2:-20}
rules=${3:-signatures}
[ -f "$pcap" ] || { echo "bench-dpdk: capture not found: $pcap" >&2; exit 2; }
for tool in capinfos tshark; do
  command -v "$tool" >/dev/null || { echo "bench-dpdk: $tool missing (run scripts/setup.sh)" >&2; exit 2; }
done
cargo build --release --locked --bin mirador -q

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
packets=$(capinfos -c -M "$pcap" | awk -F': *' '/Number of packets/ {print $2}')
# net_pcap holds the whole capture in mbufs of the run's pool, plus the ring;
# looping cannot chain mbufs, so each must hold the largest frame.
mbufs=$(( packets + 8192 ))
largest=$(tshark -r "$pcap" -T fields -e frame.cap_len 2>/dev/null | sort -n | tail -1)
room=$(( largest > 2048 ? (largest + 63) / 64 * 64 : 2048 ))
megabytes=$(( mbufs * (room + 512) / 1048576 + 256 ))
cat > "$work/bench.toml" <<TOML
[dpdk]
eal = ["-l", "0-1", "--no-huge", "--no-pci", "--no-shconf", "-m", "$megabytes",
       "--vdev=net_pcap0,rx_pcap=$pcap,infinite_rx=1"]
mempool_mbufs = $mbufs
mbuf_data_room = $room
stats_interval_secs = 0
TOML
echo "input: $pcap ($packets packets, largest $largest bytes), looped by net_pcap infinite_rx for ${seconds}s per run"

run() {
  timeout -s INT "$seconds" target/release/mirador run --config "$work/bench.toml" \
    --out "$work/out-$1" "${@:2}" > "$work/$1.txt" 2> "$work/$1.err" || true
  grep -q "mirador run summary" "$work/$1.txt" || { cat "$work/$1.err" >&2; exit 1; }
}
rate() { awk '/^  lcore/ {for (i = 1; i <= NF; i++) if ($i == "packets/s") print $(i-1)}' "$work/$1.txt"; }
gbps() { awk '/^  lcore/ {for (i = 1; i <= NF; i++) if ($i == "Gbit/s") print $(i-1)}' "$work/$1.txt"; }

run rx --rx-only
run pipeline --rules "$rules"
echo "rx-only   (receive + free)   per worker: $(rate rx) packets/s, $(gbps rx) Gbit/s"
echo "pipeline  (rules: $rules)   per worker: $(rate pipeline) packets/s, $(gbps pipeline) Gbit/s"
awk -v a="$(rate pipeline)" -v b="$(rate rx)" 'BEGIN { printf "pipeline / rx-only: %.3f\n", a / b }'
echo
echo "full pipeline run:"
cat "$work/pipeline.txt"
