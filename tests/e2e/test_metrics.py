"""Prometheus metrics of `mirador run`: the text passes promtool's lint, the
counters move with the traffic, and a real Prometheus server scrapes them."""

import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import json
from pathlib import Path

from conftest import PCAPS, dpdk_eal, mirador_bin, require, summary_value, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, accept: str = "text/plain") -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no sample {sample} in:\n{text}")


def test_metrics_lint_move_and_reach_prometheus(tmp_path: Path):
    promtool = require("promtool")
    prometheus = require("prometheus")
    port = free_port()
    err = tmp_path / "stderr"
    eal = dpdk_eal(f"net_pcap0,rx_pcap={PCAPS / 'webshell.pcap'},infinite_rx=1", lcores="-l 0-1 -m 256")
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [mirador_bin(), "run", "--out", str(tmp_path / "out"), "--eal", eal,
             "--set", f'metrics.listen="127.0.0.1:{port}"'],
            stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            wait_for(err, "serving metrics", 60)
            url = f"http://127.0.0.1:{port}/metrics"
            time.sleep(1)
            kind, first = get(url)
            assert kind.startswith("text/plain; version=0.0.4")
            lint = subprocess.run([promtool, "check", "metrics"], input=first,
                                  capture_output=True, text=True, timeout=60)
            assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
            time.sleep(1)
            _, second = get(url)
            packets = 'mirador_worker_packets_total{worker="0"}'
            assert value(second, packets) > value(first, packets) > 0
            assert value(second, 'mirador_port_rx_packets_total{port="net_pcap0"}') > 0
            assert value(second, 'mirador_detections_total{family="webshell"}') > 0
            assert value(second, "mirador_rules_loaded") > 0
            kind, open_metrics = get(url, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
            assert kind.startswith("application/openmetrics-text; version=1.0.0")
            assert open_metrics.endswith("# EOF\n")
            assert "# TYPE mirador_worker_packets counter" in open_metrics

            scraped = scrape_with_prometheus(prometheus, port, tmp_path)
            assert scraped > 0
        finally:
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.read_text()
    assert int(summary_value(stdout, "packets").split()[0]) >= scraped


def scrape_with_prometheus(prometheus: str, port: int, tmp_path: Path) -> float:
    """Starts Prometheus on loopback with mirador as its target and returns
    the worker packet count its query API reports."""
    web = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: mirador\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
    log = open(tmp_path / "prometheus.log", "w")
    server = subprocess.Popen(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web}"],
        stdout=log, stderr=log)
    try:
        query = urllib.parse.quote('sum(mirador_worker_packets_total{job="mirador"})')
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                _, body = get(f"http://127.0.0.1:{web}/api/v1/query?query={query}", "application/json")
            except OSError:
                continue
            result = json.loads(body)["data"]["result"]
            if result and float(result[0]["value"][1]) > 0:
                up = json.loads(get(f"http://127.0.0.1:{web}/api/v1/query?query=up", "application/json")[1])
                assert up["data"]["result"][0]["value"][1] == "1", up
                return float(result[0]["value"][1])
        raise AssertionError(f"Prometheus reported no mirador counters:\n{(tmp_path / 'prometheus.log').read_text()}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
