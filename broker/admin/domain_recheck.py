"""Background re-check of pending domains (issue 8 §3), one loop per worker process.

broker.core.domains.recheck_pending picks the domains whose backoff has elapsed and
records each outcome (verified, or failed after 30 days, as WorkOS does). Several
workers may check the same domain at once; the outcome is idempotent.
"""

from __future__ import annotations

import asyncio
import logging

from broker.core import domains
from broker.web.services import Services

log = logging.getLogger("broker.admin.domain_recheck")

INTERVAL_SECONDS = 30.0


async def run(services: Services, interval: float = INTERVAL_SECONDS) -> None:
    while True:
        try:
            results = await domains.recheck_pending(
                services.store, services.resolver, services.clock, run=services.run
            )
            for result in results:
                log.info(
                    "domain re-checked",
                    extra={"domain": result.domain.domain, "outcome": result.outcome},
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("domain re-check failed")
        await asyncio.sleep(interval)
