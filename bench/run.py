"""Run every benchmark under bench/ in turn and print their figures.

Run: .venv/bin/python bench/run.py [name ...]   (names: startup, saml, oidc, scim, ...)
Each bench_*.py is a standalone script that prints its own figures; this runner
only finds them, runs them one after another (never in parallel: they compete for
the same two cores) and reports which failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in names]
    failed = []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        started = time.monotonic()
        code = subprocess.run([sys.executable, str(script)], check=False).returncode
        print(f"-- {script.stem}: exit {code} in {time.monotonic() - started:.1f} s\n", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
