"""What every CLI command shares: settings, the store, output (--json), exit codes.

Exit codes: 0 done, 1 refused or failed (one line on stderr), 2 bad configuration
or usage. Never a traceback for an expected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import Any

from broker import settings as settings_module
from broker.clock import SystemClock
from broker.settings import Settings
from broker.storage.store import SQLiteStore

clock = SystemClock()


class Command:
    """A sub-command: `run(args) -> result` whose result is printed (text or JSON)."""

    def __init__(
        self, parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], Any]
    ) -> None:
        parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
        parser.set_defaults(_run=run)


def load_settings(args: argparse.Namespace | None = None) -> Settings:
    return settings_module.load()


def open_store(settings: Settings) -> SQLiteStore:
    return SQLiteStore.open(settings.database, settings.get("storage.busy_timeout_ms"))


def jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def emit(args: argparse.Namespace, result: Any, text: str | Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(jsonable(result), indent=2, sort_keys=True, default=str))
    else:
        print(text() if callable(text) else text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) for r in rows]
    return "\n".join(lines)


def fail(message: str, code: int = 1) -> int:
    print(f"exec-broker: {message}", file=sys.stderr)
    return code
