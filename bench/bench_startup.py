"""Cold start of `exec-broker serve` until /readyz answers 200, and RSS at idle.

Run: .venv/bin/python bench/bench_startup.py [--runs 5]
Each run uses a fresh `exec-broker init` home in a temp dir and a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "exec-broker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def one_run(workers: int) -> tuple[float, list[int]]:
    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        env = {
            **os.environ,
            "BROKER_CONFIG": f"{home}/config/broker.toml",
            "BROKER_PORT": str(port),
            "BROKER_LOG_LEVEL": "warning",
        }
        Path(home, "config").mkdir()
        Path(home, "config", "broker.example.toml").write_text(
            (ROOT / "config" / "broker.example.toml").read_text()
        )
        subprocess.run(
            [str(BIN), "init", "--public-url", f"http://127.0.0.1:{port}"],
            env=env,
            check=True,
            capture_output=True,
        )
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN), "serve", "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not ready(url):
                if proc.poll() is not None:
                    raise SystemExit("serve exited during start-up")
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            time.sleep(1.0)  # settle, then read idle RSS
            pids = (
                [proc.pid]
                if workers == 1
                else [
                    int(p)
                    for p in subprocess.run(
                        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
                    ).stdout.split()
                ]
            )
            rss = [rss_kib(pid) for pid in pids]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        return elapsed, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for workers in (1, 2):
        times, rss = [], []
        for _ in range(args.runs):
            elapsed, sizes = one_run(workers)
            times.append(elapsed)
            rss.extend(sizes)
        print(
            f"serve --workers {workers}: cold start to /readyz median "
            f"{statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, "
            f"max {max(times) * 1000:.0f}, {args.runs} runs); idle RSS per process median "
            f"{statistics.median(rss) / 1024:.1f} MiB (max {max(rss) / 1024:.1f} MiB)"
        )


if __name__ == "__main__":
    main()
