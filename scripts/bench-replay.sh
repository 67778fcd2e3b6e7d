#!/usr/bin/env bash
# Whole-pipeline replay benchmark on one core: the capture is repeated REPEAT
# times, each copy shifted past the end of the one before (so flows of one
# copy time out before the next begins), and replayed twice; the second run,
# with the files in the page cache, is reported.
#   scripts/bench-replay.sh [PCAP] [REPEAT]
# PCAP defaults to ../shared/pcaps/ndpi-benign-mix.pcap, REPEAT to 10.
set -euo pipefail
cd "$(dirname "$0")/.."
pcap=${1:-../shared/pcaps/ndpi-benign-mix.pcap}
repeat=${2:-10}
[ -f "$pcap" ] || { echo "bench-replay: capture not found: $pcap" >&2; exit 2; }
for tool in capinfos editcap; do
  command -v "$tool" >/dev/null || { echo "bench-replay: $tool missing (run scripts/setup.sh)" >&2; exit 2; }
done
cargo build --release --locked --bin mirador -q

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
read -r first last < <(capinfos -T -r -a -e -S "$pcap" | awk -F'\t' '{print int($2), int($3)+1}')
span=$(( last - first + 3600 ))
mkdir -p "$work/in"
for i in $(seq 0 $((repeat - 1))); do
  editcap -F pcapng -t $((i * span)) "$pcap" "$work/in/part-$(printf %04d "$i").pcapng"
done
echo "input: $repeat copies of $pcap ($(du -sh "$work/in" | cut -f1))"
target/release/mirador replay --out "$work/out1" "$work/in" > /dev/null
/usr/bin/time -f "peak RSS %M KiB" target/release/mirador replay --out "$work/out2" "$work/in" 2> "$work/time" | tee "$work/summary"
cat "$work/time"
