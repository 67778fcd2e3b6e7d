#!/usr/bin/env bash
# What the built-in detectors cost. The capture is made into a corpus of
# COPIES copies as the peer comparison makes it (gaps over 50 ms shortened
# to 50 ms), each copy after a pause drawn at random (seeded) between
# nothing and four times the copy's length, so that the copies do not
# repeat at a fixed period (which would make every flow of the mix a
# beacon). The corpus is replayed without rules (midstream on, as the peer
# comparison runs), with the detectors and without them, RUNS times each,
# interleaved. Printed for each configuration are the medians of the
# replay's throughput and of the worker's while busy (as the summary gives
# them), of the CPU seconds of every thread (user + system), the
# detections, and what the detectors cost of each no-detector figure.
#   scripts/bench-detectors.sh [PCAP] [COPIES] [RUNS]
# PCAP defaults to ../shared/pcaps/ndpi-benign-mix.pcap (a pcap file),
# COPIES to 20, RUNS to 7.
set -euo pipefail
cd "$(dirname "$0")/.."
pcap=${1:-../shared/pcaps/ndpi-benign-mix.pcap}
copies=${2:-20}
runs=${3:-7}
[ -f "$pcap" ] || { echo "bench-detectors: capture not found: $pcap" >&2; exit 2; }
cargo build --release --locked --bin mirador -q

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/no-rules"
python3 - "$pcap" "$copies" "$work/corpus.pcap" <<'EOF'
import random, struct, sys
source, copies, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(source, "rb") as f:
    header = f.read(24)
    magic = struct.unpack("<I", header[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    unit = 1e9 if struct.unpack(endian + "I", header[:4])[0] == 0xA1B23C4D else 1e6
    packets = []
    while len(record := f.read(16)) == 16:
        secs, frac, captured, wire = struct.unpack(endian + "IIII", record)
        packets.append((secs + frac / unit, wire, f.read(captured)))
random.seed(42)
now, count = 1_700_000_000.0, 0
with open(out, "wb") as o:
    o.write(header)
    for _ in range(copies):
        start, previous = now, None
        for t, wire, data in packets:
            if previous is not None:
                gap = t - previous
                now += gap if 0 <= gap <= 0.05 else 0.05
            previous = t
            secs = int(now)
            frac = min(int(round((now - secs) * unit)), int(unit) - 1)
            o.write(struct.pack(endian + "IIII", secs, frac, len(data), wire) + data)
            count += 1
        now += 0.05 + random.uniform(0, 4 * (now - start))
print(f"corpus: {copies} copies of {source}, {count} packets, {now - 1_700_000_000:.0f} s of capture time")
EOF
bytes=$(stat -c %s "$work/corpus.pcap")

run() {
  local mode=$1 extra=()
  [ "$mode" = off ] && extra=(--set detectors.enabled=false)
  rm -rf "$work/out"
  /usr/bin/time -f "%U %S" -o "$work/time" target/release/mirador replay --midstream \
    --rules "$work/no-rules" "${extra[@]}" --out "$work/out" "$work/corpus.pcap" \
    > "$work/summary-$mode" 2> /dev/null
  local replay worker cpu
  replay=$(awk '$1 == "throughput" {print $4}' "$work/summary-$mode")
  worker=$(awk '$1 == "worker" {print $4}' "$work/summary-$mode")
  cpu=$(awk '{printf "%.3f", $1 + $2}' "$work/time")
  echo "$replay $worker $cpu" >> "$work/$mode"
}

for _ in $(seq "$runs"); do
  run on
  run off
done
echo "$runs runs each, no rules, midstream, $bytes bytes"
grep -E "^  detections|by family" "$work/summary-on" | sed 's/^ */  with detectors: /'
python3 - "$work/on" "$work/off" <<'EOF'
import statistics, sys
def medians(path):
    rows = [list(map(float, line.split())) for line in open(path)]
    return [statistics.median(column) for column in zip(*rows)]
on, off = medians(sys.argv[1]), medians(sys.argv[2])
for name, i in [("replay", 0), ("worker busy", 1)]:
    print(f"{name:12} without {off[i]:.3f} Gbit/s, with {on[i]:.3f} Gbit/s: "
          f"detectors cost {(off[i] - on[i]) / off[i] * 100:.1f}% of the throughput")
print(f"{'CPU':12} without {off[2]:.3f} s, with {on[2]:.3f} s: "
      f"detectors cost {(on[2] - off[2]) / off[2] * 100:.1f}% more CPU time")
EOF
