#!/usr/bin/env bash
# Soak: streams `pcapgen soak` (a new client in every flow) into `mirador
# replay -` for MINUTES minutes at FLOWS / (MINUTES * 60) new flows a second,
# paced by the wall clock, and samples the sensor every SOAK_INTERVAL
# seconds (default 10): its resident memory (VmRSS) and the size of every
# state structure its metrics show. Writes OUT/soak.csv and OUT/soak.png and
# prints the RSS at 1, 10 and 30 minutes and its spread after warm-up.
#
#   scripts/soak.sh MINUTES FLOWS [OUT] [-- MIRADOR_OPTIONS...]
#
# OUT defaults to soak-out. MIRADOR_BIN and PCAPGEN_BIN pick the binaries
# (default: the release builds, built when missing). SOAK_WARMUP_SECS is
# the warm-up left out of the spread (default: a fifth of the run).
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 2 ] || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
minutes=$1 flows=$2
shift 2
out=soak-out
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out=$1; shift; fi
[ "${1:-}" = "--" ] && shift
interval=${SOAK_INTERVAL:-10}
seconds=$((minutes * 60))
rate=$(( (flows + seconds - 1) / seconds ))
warmup=${SOAK_WARMUP_SECS:-$((seconds / 5))}

if [ -z "${MIRADOR_BIN:-}" ] || [ -z "${PCAPGEN_BIN:-}" ]; then
  target="${CARGO_TARGET_DIR:-$PWD/target}/release"
  [ -x "$target/mirador" ] && [ -x "$target/pcapgen" ] ||
    cargo build --release --locked -p mirador -p pcapgen
  MIRADOR_BIN=${MIRADOR_BIN:-$target/mirador}
  PCAPGEN_BIN=${PCAPGEN_BIN:-$target/pcapgen}
fi
python=.venv/bin/python
[ -x "$python" ] || python=python3
"$python" -c "import matplotlib" 2>/dev/null || {
  echo "soak: matplotlib is missing: run scripts/setup.sh" >&2
  exit 1
}

mkdir -p "$out"
rm -rf "$out/parquet"
csv="$out/soak.csv"
log="$out/mirador.log"
echo "soak: $minutes min, $flows flows at $rate flows/s into $MIRADOR_BIN; samples every ${interval}s in $csv"
"$PCAPGEN_BIN" soak --flows "$flows" --rate "$rate" --realtime |
  "$MIRADOR_BIN" replay - --out "$out/parquet" --set metrics.listen=127.0.0.1:0 "$@" \
    >"$out/summary.txt" 2>"$log" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' EXIT

address=""
for _ in $(seq 100); do
  address=$(sed -n 's/.*serving metrics at \/metrics address=\([0-9.:]*\).*/\1/p' "$log" | head -1)
  [ -n "$address" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$address" ] || { echo "soak: the sensor did not serve metrics:" >&2; cat "$log" >&2; exit 1; }

columns="rss_kib packets open_flows reassembly_bytes fragments fragment_bytes threshold_entries detector_entries writer_queue_chunks writer_open_files service_rows"
echo "seconds ${columns}" | tr ' ' ',' >"$csv"
SECONDS=0
next=$interval
while kill -0 "$pid" 2>/dev/null; do
  while [ "$SECONDS" -lt "$next" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null || break
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  metrics=$(curl -s --max-time 5 "http://$address/metrics" || true)
  [ -n "$rss" ] && [ -n "$metrics" ] || { next=$((next + interval)); continue; }
  value() { echo "$metrics" | awk -v name="$1" '$1 ~ "^"name"(\\{|$)" {sum += $2} END {printf "%d", sum}'; }
  echo "$next,$rss,$(value mirador_worker_packets_total),$(value mirador_worker_open_flows),$(value mirador_worker_reassembly_bytes),$(value mirador_worker_fragments),$(value mirador_worker_fragment_bytes),$(value mirador_worker_threshold_entries),$(value mirador_worker_detector_entries),$(value mirador_writer_queue_chunks),$(value mirador_writer_open_files),$(value mirador_writer_service_rows)" >>"$csv"
  next=$((next + interval))
done
trap - EXIT
wait "$pid" || { echo "soak: the sensor failed:" >&2; cat "$log" >&2; exit 1; }

"$python" - "$csv" "$out/soak.png" "$warmup" <<'EOF'
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

path, png, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [{k: int(v) for k, v in row.items()} for row in csv.DictReader(open(path))]
if not rows:
    sys.exit("soak: no sample was taken")
t = [r["seconds"] / 60 for r in rows]
fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 7))
top.plot(t, [r["rss_kib"] / 1024 for r in rows], label="resident memory (MiB)")
top.axvline(warmup / 60, color="grey", linestyle=":", label="end of warm-up")
top.set_ylabel("MiB")
top.set_ylim(bottom=0)
top.legend()
for name in ("open_flows", "fragments", "detector_entries", "threshold_entries", "service_rows"):
    bottom.plot(t, [r[name] for r in rows], label=name.replace("_", " "))
bottom.set_xlabel("minutes")
bottom.set_ylabel("entries")
bottom.legend()
fig.suptitle("mirador soak: resident memory and state sizes")
fig.savefig(png, dpi=100)

for minute in (1, 10, 30):
    at = [r for r in rows if r["seconds"] <= minute * 60]
    if at and rows[-1]["seconds"] >= minute * 60:
        print(f"soak: rss at {minute} min: {at[-1]['rss_kib']} KiB")
steady = [r for r in rows if r["seconds"] > warmup]
if steady:
    rss = [r["rss_kib"] for r in steady]
    first = rss[0]
    print(f"soak: after warm-up ({warmup} s): rss {min(rss)}..{max(rss)} KiB, "
          f"{100 * (max(rss) - first) / first:+.1f}% / {100 * (min(rss) - first) / first:+.1f}% "
          f"of the first sample; open flows {min(r['open_flows'] for r in steady)}.."
          f"{max(r['open_flows'] for r in steady)}")
print(f"soak: {len(rows)} samples in {path}, plot in {png}")
EOF
