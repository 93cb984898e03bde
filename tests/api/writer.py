"""A separate process writing events through the core into the same SQLite file, as a
second broker worker would: `writer.py DB ORG COUNT NAME START_AT` (both writers start
at the same wall-clock moment). Each event is its own
transaction, held open for a moment so that writers and the reader interleave."""

from __future__ import annotations

import random
import sys
import time

from broker.core import events
from broker.storage.store import SQLiteStore


def main() -> None:
    path, org, count, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    store = SQLiteStore.open(path, 10_000)
    time.sleep(max(0.0, float(sys.argv[5]) - time.time()))
    for i in range(count):
        with store.transaction():
            events.record(
                store,
                "dsync.user.updated",
                org,
                {"object": "directory_user", "writer": name, "n": i},
                time.time(),
            )
            time.sleep(random.random() * 0.002)
        time.sleep(random.random() * 0.002)
    store.close()


if __name__ == "__main__":
    main()
