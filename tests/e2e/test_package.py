"""The Debian package: what it installs, and a replay with the installed
layout alone, from another folder, in a root where the checkout and the host's
configuration do not exist (its own files; the host's shared libraries)."""

import os
import re
import subprocess
import tomllib
from pathlib import Path

import duckdb
import pytest

from conftest import PCAPS, ROOT, mirador_bin, require

INSTALLED = [
    "./usr/bin/mirador",
    "./etc/mirador/mirador.toml",
    "./usr/share/mirador/signatures/webshell.rules",
    "./usr/share/mirador/signatures/weak-passwords.txt",
    "./usr/share/mirador/signatures/ioc/mining-pools.txt",
    "./usr/share/mirador/pcaps/basic.pcap",
    "./usr/lib/systemd/system/mirador.service",
    "./usr/lib/systemd/system/mirador-export.service",
    "./usr/lib/systemd/system/mirador-export.timer",
]
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]* = ")


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    require("dpkg-deb")
    require("dpkg-shlibdeps")
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        [str(ROOT / "scripts" / "package.sh"), "--binary", mirador_bin(), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    deb = Path(result.stdout.strip())
    assert deb.is_file() and deb.parent == out
    return deb


@pytest.fixture(scope="module")
def unpacked(package, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg", "-x", str(package), str(root)], check=True)
    return root


def test_package_lists_the_installed_layout_and_its_libraries(package):
    listing = subprocess.run(["dpkg-deb", "-c", str(package)], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[-1] for line in listing.splitlines()}
    for path in INSTALLED:
        assert path in paths, f"{path} not in the package"
    depends = subprocess.run(["dpkg-deb", "-f", str(package), "Depends"], capture_output=True, text=True, check=True).stdout
    # The libraries the binary links, as the machine's dpkg names them.
    linked = subprocess.run(["ldd", mirador_bin()], capture_output=True, text=True, check=True).stdout
    for soname in ("libhs.so", "librte_eal.so", "librte_ethdev.so"):
        line = next(l for l in linked.splitlines() if soname in l)
        library = os.path.realpath(line.split("=>")[1].split()[0])
        owner = subprocess.run(["dpkg", "-S", library],
                               capture_output=True, text=True, check=True).stdout.split(":")[0]
        assert owner in depends, (owner, depends)
    eal = re.search(r"librte-eal(\S*)", depends).group(1).rstrip(",")
    assert f"librte-net-pcap{eal}" in depends and f"librte-net-af-packet{eal}" in depends, depends
    conffiles = subprocess.run(["dpkg-deb", "-I", str(package), "conffiles"], capture_output=True, text=True, check=True).stdout
    assert conffiles.split() == ["/etc/mirador/mirador.toml"]


def leaves(table: dict, prefix=()) -> dict:
    """A parsed TOML document as {(section, ..., key): value}."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out |= leaves(value, prefix + (key,))
        else:
            out[prefix + (key,)] = value
    return out


def test_installed_config_sets_only_the_layout(unpacked):
    installed = tomllib.loads((unpacked / "etc/mirador/mirador.toml").read_text())
    layout = leaves(tomllib.loads((ROOT / "dist/installed.toml").read_text()))
    eal = tomllib.loads((ROOT / "mirador.example.toml").read_text())["dpdk"]["eal"]
    layout[("dpdk", "eal")] = [a.replace("rx_pcap=pcaps/", "rx_pcap=/usr/share/mirador/pcaps/") for a in eal]
    assert layout[("dpdk", "eal")] != eal
    assert leaves(installed) == layout


def test_installed_config_comments_every_default(unpacked):
    example = [l for l in (ROOT / "mirador.example.toml").read_text().splitlines() if KEY.match(l)]
    installed = (unpacked / "etc/mirador/mirador.toml").read_text().splitlines()
    expected = ["# " + l for l in example]
    commented = [l for l in installed if l in set(expected)]
    assert commented == expected


def test_systemd_units_verify(unpacked):
    require("systemd-analyze")
    units = sorted(str(p) for p in (unpacked / "usr/lib/systemd/system").iterdir())
    assert len(units) == 3
    # The units name /usr/bin/mirador: lay the package's /usr/bin over the
    # host's in a private mount namespace.
    script = f'mount -t overlay overlay -o lowerdir={unpacked}/usr/bin:/usr/bin /usr/bin && exec systemd-analyze verify "$@"'
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *units],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_installed_package_replays_from_another_folder(unpacked):
    root = unpacked
    work = root / "srv" / "captures"
    work.mkdir(parents=True)
    (work / "webshell.pcap").write_bytes((PCAPS / "webshell.pcap").read_bytes())
    libs = ["/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
    mounts = []
    for lib in libs:
        (root / lib.lstrip("/")).mkdir(parents=True, exist_ok=True)
        mounts.append(f"mount --bind {lib} {root}{lib}")
    for link, target in (("lib", "usr/lib"), ("lib64", "usr/lib64")):
        if not (root / link).exists():
            os.symlink(target, root / link)
    script = " && ".join(mounts) + f" && exec unshare --root={root} --wd=/srv/captures /usr/bin/mirador replay webshell.pcap"
    env = {k: v for k, v in os.environ.items() if k != "MIRADOR_CONFIG"}
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration: /etc/mirador/mirador.toml" in result.stderr
    assert "under /var/lib/mirador/out" in result.stdout
    out = root / "var/lib/mirador/out"
    families = duckdb.sql(
        f"select family, count(*) from read_parquet('{out}/detections/**/*.parquet') group by family"
    ).fetchall()
    assert dict(families).get("webshell", 0) > 0, families
    assert list((root / "var/cache/mirador").glob("*.hsdb")), "no compiled rules cached under /var/cache/mirador"
