"""The wheel carries everything the appliance needs (templates from the top-level ui/,
migrations), and pyproject lists every package under broker/."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "broker").rglob("__init__.py")
    }
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"
    assert "broker._ui" in listed and config["package-dir"]["broker._ui"] == "ui"


@pytest.mark.slow
def test_wheel_contains_templates_static_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "broker/_ui/templates/error.html" in names
    assert "broker/_ui/static/broker.css" in names
    assert "broker/storage/migrations/0001_foundation.sql" in names
    templates = {p.relative_to(ROOT / "ui").as_posix() for p in (ROOT / "ui").rglob("*.html")}
    assert {f"broker/_ui/{t}" for t in templates} <= names
