#!/usr/bin/env bash
# Files per second: the benign mix repeated 20 times with its original
# timestamps, a day apart (thousands of hourly partitions, a file each),
# against the same packets with contiguous times (a few files).
#   scripts/bench-small-files.sh [BIN] [RUNS]
# Each run writes to a freshly made ext4 file system (a loop image), so
# that inodes freed by an earlier run do not slow the next one down.
# Needs root, ../shared, editcap and mergecap; prints each run and the
# medians.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/mirador}")
runs=${2:-3}
shared=$(realpath ../shared)
mix="$shared/pcaps/ndpi-benign-mix.pcap"
[ -r "$mix" ] || { echo "bench-small-files: $mix is not here" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-small-files: mounting a loop file system needs root" >&2; exit 1; }

work=${TMPDIR:-/tmp}/mirador-small-files
mkdir -p "$work"
spread="$work/mix-spread.pcap" contiguous="$work/mix-x20.pcap"
if [ ! -s "$spread" ]; then
  parts=()
  for i in $(seq 0 19); do
    editcap -t $((i * 86400)) "$mix" "$work/part-$i.pcap"
    parts+=("$work/part-$i.pcap")
  done
  mergecap -a -F pcap -w "$spread" "${parts[@]}"
  rm -f "${parts[@]}"
fi
[ -s "$contiguous" ] || .venv/bin/python "$shared/peer/compare.py" corpus "$contiguous" >/dev/null

image="$work/fs.img" mount="$work/fs"
mkdir -p "$mount"
cleanup() { mountpoint -q "$mount" && umount "$mount"; rm -f "$image"; }
trap cleanup EXIT

run() { # NAME CAPTURE: prints "NAME wall files"
  mountpoint -q "$mount" && umount "$mount"
  truncate -s 8G "$image" && mkfs.ext4 -q -F "$image" && mount -o loop "$image" "$mount"
  local start end
  start=$(date +%s.%N)
  MIRADOR_CONFIG= "$bin" replay --out "$mount/out" "$2" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$1 $(echo "$end - $start" | bc) $(find "$mount/out" -name '*.parquet' | wc -l)"
}

results="$work/runs"
: > "$results"
for _ in $(seq 1 "$runs"); do
  for corpus in spread contiguous; do
    capture=$spread
    [ "$corpus" = contiguous ] && capture=$contiguous
    run "$corpus" "$capture" | tee -a "$results"
  done
done
median() { grep "^$1 " "$results" | awk '{print $2, $3}' | sort -n | awk '{w[NR]=$1; f[NR]=$2} END {m=int((NR+1)/2); print w[m], f[m]}'; }
read -r sw sf < <(median spread)
read -r cw cf < <(median contiguous)
printf 'spread      %.2f s, %d files, %.0f files/s\n' "$sw" "$sf" "$(echo "$sf / $sw" | bc -l)"
printf 'contiguous  %.2f s, %d files\n' "$cw" "$cf"
printf 'ratio       %.1fx\n' "$(echo "$sw / $cw" | bc -l)"
