#!/usr/bin/env bash
# Builds the Debian package: scripts/package.sh [--binary PATH] [--out DIR]
#
#   /usr/bin/mirador                   the sensor (stripped)
#   /etc/mirador/mirador.toml          every key commented with its default; the
#                                      keys of the installed layout (dist/installed.toml) set
#   /usr/share/mirador/signatures      the bundled signatures and indicator lists
#   /usr/share/mirador/pcaps           the sample captures [dpdk] reads by default
#   /usr/lib/systemd/system/           mirador.service, mirador-export.service and .timer
#
# Without --binary it builds target/release/mirador. Prints the package's path.
set -euo pipefail
umask 022
cd "$(dirname "$0")/.."
binary=""
out="target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
    cargo build --release --locked --bin mirador >&2
    binary=target/release/mirador
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"

install -D -m 0755 "$binary" "$root/usr/bin/mirador"
strip --strip-debug "$root/usr/bin/mirador"
mkdir -p "$root/usr/share/mirador" "$root/usr/share/doc/mirador"
cp -r signatures "$root/usr/share/mirador/signatures"
install -d "$root/usr/share/mirador/pcaps"
install -m 0644 pcaps/*.pcap pcaps/*.pcapng "$root/usr/share/mirador/pcaps/"
install -m 0644 README.md "$root/usr/share/doc/mirador/README.md"
install -D -m 0644 -t "$root/usr/lib/systemd/system" dist/*.service dist/*.timer
install -d "$root/etc/mirador"

# The installed configuration: the example's keys commented, the layout's set.
awk -v share=/usr/share/mirador '
    FNR == NR {
        if ($0 ~ /^\[.*\]$/) { section = $0; next }
        if ($0 ~ /^[A-Za-z_][A-Za-z0-9_-]* = /) { set[section " " $1] = $0 }
        next
    }
    FNR == 1 {
        section = ""
        print "# mirador configuration, as the package installs it. Every key is shown"
        print "# commented with its default; the uncommented ones place the bundled files"
        print "# and the sensor'"'"'s state in the installed layout. Relative paths are taken"
        print "# from this file'"'"'s folder; command-line flags override the file."
        header = 1
    }
    header && /^#/ { next }
    { header = 0 }
    /^\[.*\]$/ { section = $0; print; next }
    /^[A-Za-z_][A-Za-z0-9_-]* = / {
        print "# " $0
        if ((section " " $1) in set) { print set[section " " $1]; used[section " " $1] = 1 }
        else if (section == "[dpdk]" && $1 == "eal") { gsub(/rx_pcap=pcaps\//, "rx_pcap=" share "/pcaps/"); print }
        next
    }
    { print }
    END { for (k in set) if (!(k in used)) { print "dist/installed.toml: no key " k " in mirador.example.toml" > "/dev/stderr"; exit 1 } }
' dist/installed.toml mirador.example.toml > "$root/etc/mirador/mirador.toml"

mkdir -p "$root/DEBIAN" "$stage/debian"
echo /etc/mirador/mirador.toml > "$root/DEBIAN/conffiles"
printf 'Source: mirador\n\nPackage: mirador\nArchitecture: any\n' > "$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e "root/usr/bin/mirador" 2> >(grep -v "should already be installed" >&2) \
    | sed -n 's/^shlibs:Depends=//p')
# The capture drivers are plugins, loaded by EAL rather than linked: of the
# same DPDK ABI as the EAL library the binary links.
abi=$(grep -o 'librte-eal[0-9.]*' <<< "$depends" | sed 's/librte-eal//')
[ -n "$abi" ] || { echo "package.sh: no librte-eal among the binary's libraries: $depends" >&2; exit 1; }
cat > "$root/DEBIAN/control" <<CONTROL
Package: mirador
Version: $version
Architecture: $arch
Maintainer: mirador developers <mirador@localhost>
Depends: $depends, librte-net-pcap$abi, librte-net-af-packet$abi
Section: net
Priority: optional
Installed-Size: $(du -sk "$root" | cut -f1)
Description: network detection sensor on DPDK
 Reads a mirror port through DPDK (or replays capture files), reassembles
 flows, runs Suricata rules and built-in detectors for webshells, C2,
 botnets, mining and tunnels, and writes flows and detections as Parquet.
CONTROL

cat > "$root/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
SCRIPT
cat > "$root/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop mirador.service mirador-export.timer || true
fi
SCRIPT
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm"

mkdir -p "$out"
deb="$out/mirador_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
