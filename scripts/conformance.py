#!/usr/bin/env python3
"""Rule-semantics conformance against a suricata-verify tests folder.

For each test (a folder with test.yaml), runs `mirador replay` on its pcap
with its rules and its arguments mapped to mirador's flags, counts
detections per signature, and compares them with the test's alert `filter`
checks (count of alerts matching signature id, addresses, ports ...). Checks
on other event types (http, flow, fileinfo, stats) are not mirador's output
and are not compared. Prints N passed, N failed, N skipped per group
(stream/packet, HTTP, http-evader) and the reason for each skip and failure.

Tests run with --simulate-ips (or stream.inline) run with mirador's default
inline stream mode, where stream data is inspected as soon as it is in order
(alert counts are what is compared; mirador never drops, and checks on drop
verdicts are skipped); the others run with reassembly.inline=false,
Suricata's IDS mode, where stream data waits for the receiver's ACK. A
test's host-os-policy maps to reassembly.host_os_policy; `-k all` maps to
--checksum-validation on.

    scripts/conformance.py [SURICATA_VERIFY_DIR] [--mirador BIN] [-v]

SURICATA_VERIFY_DIR defaults to ../shared/suricata-verify. The exit code is
0 whatever the results (this is a measurement, not a gate).
"""

import argparse
import ipaddress
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Alert fields of EVE that mirador's detections table answers, and the column.
FIELDS = {
    "alert.signature_id": "sid",
    "alert.gid": "gid",
    "alert.rev": "rev",
    "alert.signature": "msg",
    "alert.severity": "priority",
    "src_ip": "src_ip",
    "dest_ip": "dst_ip",
    "src_port": "src_port",
    "dest_port": "dst_port",
    "vlan[0]": "vlan[0]",
    "vlan[1]": "vlan[1]",
    "tunnel.src_ip": "tunnel.src_ip",
    "tunnel.dest_ip": "tunnel.dst_ip",
    "tunnel.proto": "tunnel.type",
}
# EVE names a tunnel by its outer protocol; the detections table by its
# encapsulation.
TUNNEL_PROTOS = {"IPv6": "ipip", "IP-in-IP": "ipip", "GRE": "gre", "UDP": "vxlan"}
# Fields that say nothing a passive, alert-only comparison can check, or only
# how EVE prints an alert (payload dumps, packet info), not whether it fires.
IGNORED = {"event_type", "alert.action", "pcap_cnt", "proto", "alert.category",
           "flow_id", "app_proto", "direction", "tx_id", "alert.metadata",
           "payload", "payload_printable", "pkt_src", "stream", "packet", "packet.__len",
           "packet_info.linktype_name", "ip_v", "ether.src_mac", "ether.dest_mac"}
APP_LAYER = re.compile(r"^(protocol (http\S*|dns|tls|smtp|ftp|ssh|smb|dcerpc|\S+)|http[._]\S*|"
                       r"dns[._]\S*|tls[._]\S*|file[._]?data|ja3\S*|urilen|uricontent|pcre flag [UIPHDMCKSYVZ])$")


def column(row: dict, name: str):
    """A detection's value of a FIELDS column: `a.b` is a struct field,
    `a[i]` a list item; null when the struct or item is absent."""
    index = re.fullmatch(r"(\w+)\[(\d+)\]", name)
    if index:
        items = row[index.group(1)] or []
        i = int(index.group(2))
        return items[i] if i < len(items) else None
    if "." in name:
        struct, field = name.split(".", 1)
        return (row[struct] or {}).get(field)
    return row[name]


def same(ours, theirs) -> bool:
    """Equal as EVE means it: addresses compared as addresses (EVE may
    write IPv6 in full), everything else as text."""
    try:
        return ipaddress.ip_address(str(ours)) == ipaddress.ip_address(str(theirs))
    except ValueError:
        return str(ours) == str(theirs)


def flatten(match: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in match.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def merged(checks: list) -> list:
    """Checks that differ only in fields not compared (pcap_cnt, payload
    ...) count the same alerts: when one of them narrows nothing further,
    its count is the total; otherwise their counts add up."""
    groups = defaultdict(list)
    for check in checks:
        key = tuple(sorted((k, str(v)) for k, v in check.items() if k in FIELDS))
        groups[key].append(check)
    result = []
    for members in groups.values():
        plain = [c for c in members if set(c) <= set(FIELDS) | {"event_type", "__count"}]
        if plain or len(members) == 1:
            result.append((plain or members)[0])
        elif all(c["__count"] is not None for c in members):
            result.append(dict(members[0], __count=sum(int(c["__count"]) for c in members)))
        else:
            result.append(dict(members[0], __count=None))
    return result


# The Suricata whose alert semantics mirador follows; a check that requires
# another version is not this one's.
SURICATA = (8, 0, 6)


def version(text) -> tuple:
    return tuple(int(p) for p in re.findall(r"\d+", str(text))[:3])


def applies(requires) -> bool:
    if not isinstance(requires, dict):
        return True
    low, below = requires.get("min-version"), requires.get("lt-version")
    return ((low is None or SURICATA >= version(low))
            and (below is None or SURICATA < version(below)))


def group_of(test: Path, rules_text: str) -> str:
    if "http-evader" in test.parts:
        return "http-evader"
    if re.search(r"^\s*\w+\s+http\b|http[._]|uricontent|file[._]data", rules_text, re.M):
        return "HTTP"
    return "stream/packet"


def rules_of(test: Path, spec: dict) -> str:
    if isinstance(spec.get("rules"), list):
        return "\n".join(spec["rules"]) + "\n"
    files = sorted(test.glob("*.rules"))
    return "".join(f.read_text(errors="replace") + "\n" for f in files)


def pcap_of(test: Path, spec: dict):
    if spec.get("pcap") is False:
        return None
    if isinstance(spec.get("pcap"), str):
        return (test / spec["pcap"]).resolve()
    found = sorted(test.glob("*.pcap")) + sorted(test.glob("*.pcapng"))
    return found[0] if found else None


def mapped_args(test: Path, spec: dict):
    """mirador flags for the test's Suricata arguments, or a skip reason."""
    args = " ".join(str(a) for a in spec.get("args", []) or [])
    flags = []
    inline = "--simulate-ips" in args or "stream.inline=true" in args
    if re.search(r"\s-k\s+all", f" {args}"):
        flags.append("--checksum-validation=on")
    if "protocols.http2" in args:
        return None, "HTTP/2 (mirador parses HTTP/1.x)"
    if "stream.midstream=true" in args:
        flags.append("--midstream")
    layers = re.search(r"response-body-decompress-layer-limit=(\d+)", args)
    if layers:
        flags.append(f"--set=http.decompress_layers={layers.group(1)}")
    config = test / "suricata.yaml"
    if config.exists():
        text = config.read_text(errors="replace")
        if re.search(r"^\s*midstream:\s*true", text, re.M):
            flags.append("--midstream")
        limit = re.search(r"^packet-alert-max:\s*(\d+)", text, re.M)
        if limit:
            flags.append(f"--set=rules.alerts_per_packet={limit.group(1)}")
        policies = re.search(r"^host-os-policy:\n((?:[ \t]+.*\n?|\s*#.*\n?)*)", text, re.M)
        if policies:
            for name, hosts in re.findall(r"^\s+([\w-]+):\s*\[(.*?)\]", policies.group(1), re.M):
                hosts = [h.strip().strip("\"'") for h in hosts.split(",") if h.strip()]
                if hosts:
                    quoted = ", ".join(f'"{h}"' for h in hosts)
                    flags.append(f"--set=reassembly.host_os_policy.{name}=[{quoted}]")
        if re.search(r"^\s*inline:\s*(yes|true)", text, re.M):
            inline = True
    if not inline:
        # Suricata's IDS mode: stream bytes are inspected once acknowledged.
        flags.append("--set=reassembly.inline=false")
    return sorted(set(flags)), None


def unsupported(mirador: str, rules: Path):
    out = subprocess.run([mirador, "rules", "check", str(rules)], capture_output=True, text=True)
    keywords = []
    in_table = False
    for line in out.stdout.splitlines():
        if "unsupported keyword" in line and "rules using it" in line:
            in_table = True
            continue
        if in_table and line.startswith("    "):
            keywords.append(line.strip().rsplit(None, 1)[0])
        else:
            in_table = False
    malformed = [l.split("error", 1)[1].strip() for l in out.stdout.splitlines()
                 if l.strip().startswith("error")]
    return keywords, malformed


def run_test(test: Path, mirador: str, work: Path):
    """Returns (group, outcome, reason)."""
    spec = yaml.safe_load((test / "test.yaml").read_text()) or {}
    rules_text = rules_of(test, spec)
    group = group_of(test, rules_text)
    requires = spec.get("requires") or {}
    requires = dict(requires) if isinstance(requires, dict) else {}
    # A sanitizer build is how Suricata runs a test, not what it expects.
    if requires.get("features") in (["ASAN"], ["asan"]):
        requires.pop("features")
    if set(requires) - {"min-version", "version", "lt-version"}:
        return group, "skipped", f"requires {sorted(set(requires) - {'min-version'})}"
    pcap = pcap_of(test, spec)
    if pcap is None or not pcap.exists():
        return group, "skipped", "no pcap"
    checks = [c["filter"] for c in spec.get("checks", []) or []
              if "filter" in c and applies(c["filter"].get("requires"))]
    alert_checks = [flatten(f.get("match", {})) | {"__count": f.get("count")}
                    for f in checks if flatten(f.get("match", {})).get("event_type") == "alert"]
    if not alert_checks:
        return group, "skipped", "no alert checks"
    other_apps = {str(flatten(f.get("match", {})).get("app_proto")) for f in checks} - {"None", "http", "http1"}
    if other_apps and re.search(r"file[._]data", rules_text):
        return group, "skipped", f"file data of a protocol mirador does not parse: {sorted(other_apps)}"
    flags, skip = mapped_args(test, spec)
    if skip:
        return group, "skipped", skip
    for check in alert_checks:
        if check.get("verdict.action", "alert") == "alert":
            # Every detection of a passive sensor has the verdict "alert".
            check.pop("verdict.action", None)
        # The entropy an alert's `entropy` keyword measured is how EVE
        # prints it, not whether it fired.
        unknown = {k for k in set(check) - set(FIELDS) - IGNORED - {"__count"}
                   if not k.startswith("metadata.entropy.")}
        if unknown:
            reason = "checks app-layer event fields mirador does not write" if any(
                k.split(".")[0] in ("http", "dns", "tls", "fileinfo", "app_proto") for k in unknown
            ) else f"checks fields mirador does not write: {sorted(unknown)}"
            return group, "skipped", reason
    alert_checks = merged(alert_checks)
    rules = work / "test.rules"
    rules.write_text(rules_text)
    # Files rules load (datasets) are read beside the rules file; what they
    # save goes to a data folder of the run's own.
    for extra in test.iterdir():
        if extra.is_file() and extra.suffix in (".rep", ".lst", ".csv", ".txt"):
            shutil.copy(extra, work / extra.name)
    flags = [*flags, f"--set=rules.data_dir=\"{work / 'data'}\""]
    keywords, malformed = unsupported(mirador, rules)
    if keywords:
        app = [k for k in keywords if APP_LAYER.match(k)]
        if app:
            return group, "skipped", f"needs app-layer buffers: {', '.join(app[:3])}"
        return group, "skipped", f"unsupported keyword: {', '.join(keywords[:3])}"
    if malformed:
        return group, "skipped", f"rule refused: {malformed[0][:80]}"
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run([mirador, "replay", "--out", str(out), "--rules", str(rules), *flags, str(pcap)],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        return group, "failed", f"mirador exited {result.returncode}: {result.stderr.strip()[-200:]}"
    files = list((out / "detections").rglob("*.parquet"))
    rows = []
    if files:
        rel = duckdb.sql(f"select * from read_parquet('{out}/detections/**/*.parquet')")
        rows = [dict(zip(rel.columns, r)) for r in rel.fetchall()]
    for check in alert_checks:
        want = check["__count"]
        got = sum(1 for r in rows if all(
            same(column(r, FIELDS[k]), TUNNEL_PROTOS.get(v, v) if k == "tunnel.proto" else v)
            for k, v in check.items() if k in FIELDS))
        ok = got >= 1 if want is None else got == int(want)
        if not ok:
            shown = {k: v for k, v in check.items() if k in FIELDS}
            sids = Counter(r["sid"] for r in rows)
            return group, "failed", f"{shown}: expected {want}, got {got} (alerts by sid: {dict(sids)})"
    return group, "passed", ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", nargs="?", default=str(ROOT.parent / "shared" / "suricata-verify"))
    parser.add_argument("--mirador", default=str(ROOT / "target" / "release" / "mirador"))
    parser.add_argument("-v", "--verbose", action="store_true", help="print every test's outcome")
    args = parser.parse_args()
    suite = Path(args.suite)
    if not suite.is_dir():
        print(f"conformance: suite not found: {suite}", file=sys.stderr)
        return 2
    if not Path(args.mirador).exists():
        print(f"conformance: mirador not found at {args.mirador} (cargo build --release)", file=sys.stderr)
        return 2
    tests = sorted(p.parent for p in suite.rglob("test.yaml"))
    results = defaultdict(Counter)
    reasons = defaultdict(Counter)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for test in tests:
            try:
                group, outcome, reason = run_test(test, args.mirador, Path(tmp))
            except Exception as e:  # a broken test.yaml is a skip, named
                group, outcome, reason = "stream/packet", "skipped", f"unreadable test: {e}"
            results[group][outcome] += 1
            name = test.relative_to(suite)
            if outcome == "skipped":
                reasons[group][reason] += 1
            if outcome == "failed":
                failures.append((group, name, reason))
            if args.verbose:
                print(f"{outcome:8} {group:14} {name} {reason}")
    for group in ("stream/packet", "HTTP", "http-evader"):
        r = results[group]
        print(f"{group:14} {r['passed']} passed, {r['failed']} failed, {r['skipped']} skipped")
        for reason, n in reasons[group].most_common():
            print(f"    skipped {n:4}  {reason}")
    for group, name, reason in failures:
        print(f"FAILED {group}: {name}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
