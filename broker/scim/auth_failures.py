"""Throttling of unauthenticated SCIM requests (RFC 7644 §7.1 leaves abuse handling to the
service provider; RFC 6585 §4 for 429 + Retry-After).

A request with a wrong token costs a write transaction and a journal row; without a limit
anyone who can reach the endpoint could grow the store at will. So before a request goes
to the store, the edge takes one token from two buckets: one per (directory id, client
address) and one per client address (which also covers made-up directory ids). An empty
bucket answers 429 at once, with no store access at all. A request that authenticates
gives its tokens back, and the token it presented is remembered (as a hash) so that the
directory's own IdP never waits behind someone else's failures from a shared address.

This state is in process memory, per worker, on purpose: it only protects the store from
floods, so it needs no precision across workers (N workers allow N times the burst),
and keeping it in the store would spend the very writes it exists to save. The per
directory request rate, which must hold across workers, is the store's token bucket
(broker.core.directories.throttle).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from broker.ids import hash_token

# Enough for an IdP to retry a few times with a stale token after a rotation; then one
# attempt every 5 s per address and directory.
BURST = 10.0
PER_SECOND = 0.2
# Per client address, across directory ids.
ADDRESS_BURST = 30.0
ADDRESS_PER_SECOND = 1.0
MAX_KEYS = 10_000  # buckets kept (least recently used dropped): bounded memory
MAX_GOOD_TOKENS = 4  # per directory: the current and previous token, with room to spare


@dataclass(frozen=True)
class Admission:
    retry_after: int  # 0: go ahead; else answer 429 with this Retry-After
    counted: bool  # tokens were taken (given back if the request authenticates)


@dataclass
class _Bucket:
    tokens: float
    at: float


class _Buckets:
    def __init__(self, burst: float, rate: float, max_keys: int) -> None:
        self.burst, self.rate, self.max_keys = burst, rate, max_keys
        self.buckets: OrderedDict[object, _Bucket] = OrderedDict()

    def _refilled(self, key: object, now: float) -> _Bucket:
        bucket = self.buckets.pop(key, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.at) * self.rate)
        bucket.at = now
        self.buckets[key] = bucket  # most recently used last
        while len(self.buckets) > self.max_keys:
            self.buckets.popitem(last=False)
        return bucket

    def wait(self, key: object, now: float) -> float:
        bucket = self._refilled(key, now)
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self.rate

    def take(self, key: object, now: float) -> None:
        self._refilled(key, now).tokens -= 1.0

    def give_back(self, key: object, now: float) -> None:
        bucket = self._refilled(key, now)
        bucket.tokens = min(self.burst, bucket.tokens + 1.0)


class AuthFailureLimiter:
    def __init__(
        self,
        burst: float = BURST,
        per_second: float = PER_SECOND,
        address_burst: float = ADDRESS_BURST,
        address_per_second: float = ADDRESS_PER_SECOND,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pairs = _Buckets(burst, per_second, max_keys)
        self.addresses = _Buckets(address_burst, address_per_second, max_keys)
        self.good: OrderedDict[str, list[str]] = OrderedDict()  # directory id → token hashes
        self.max_keys = max_keys
        self.clock = clock

    def admit(self, directory_id: str, address: str, token: str | None) -> Admission:
        """May the request go to the store? If so, one token was taken from each bucket
        (`counted`), to be given back by `authenticated`."""
        if token and hash_token(token) in self.good.get(directory_id, ()):
            return Admission(0, counted=False)  # the directory's own client
        now = self.clock()
        pair = (directory_id, address)
        wait = max(self.pairs.wait(pair, now), self.addresses.wait(address, now))
        if wait > 0:
            return Admission(max(1, math.ceil(wait)), counted=False)
        # Taken before the outcome is known, so that a burst of concurrent requests
        # cannot all pass the check before the first failure is counted.
        self.pairs.take(pair, now)
        self.addresses.take(address, now)
        return Admission(0, counted=True)

    def authenticated(
        self, directory_id: str, address: str, token: str | None, admission: Admission
    ) -> None:
        """The request's token opened the directory: give the tokens back, remember it."""
        self.release(directory_id, address, admission)
        if token:
            known = self.good.pop(directory_id, [])
            digest = hash_token(token)
            if digest not in known:
                known = [*known, digest][-MAX_GOOD_TOKENS:]
            self.good[directory_id] = known
            while len(self.good) > self.max_keys:
                self.good.popitem(last=False)

    def release(self, directory_id: str, address: str, admission: Admission) -> None:
        """The request ended without a 401 (answered before the store, or the store was
        unavailable): it was no authentication failure, so its tokens go back."""
        if admission.counted:
            now = self.clock()
            self.pairs.give_back((directory_id, address), now)
            self.addresses.give_back(address, now)

    def refused(self, directory_id: str, token: str | None) -> None:
        """The token was refused (401): if it was remembered as good (rotated away, or
        Directory Sync turned off), forget it, so it is throttled like any other."""
        if token and directory_id in self.good:
            digest = hash_token(token)
            self.good[directory_id] = [h for h in self.good[directory_id] if h != digest]
