"""Email domains an organization proves it owns by a DNS TXT record.

The record is `_exec-broker-verification.<domain> TXT "exec-broker-verification=<token>"`.
A domain verified by one organization cannot be claimed by another; consumer mail
domains are refused; verification survives disabling SSO (DESIGN §2). Pending
domains are re-checked with backoff and fail after 30 days, as WorkOS does.

A verification is three steps: find the domain (store), look the TXT record up (DNS,
awaited), record the outcome (store). Inside the server the store steps must run on the
store thread, never on the event loop: `verify_domain` and `recheck_pending` take a
`run` callable (Services.run) for them; without one (the CLI) they are called directly.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from broker.clock import Clock
from broker.core import audit, events
from broker.core.models import Domain
from broker.core.ports import Store, TxtResolver
from broker.errors import Conflict, InvalidInput, NotFound
from broker.ids import new_id

RECORD_PREFIX = "_exec-broker-verification"
VALUE_PREFIX = "exec-broker-verification="
GIVE_UP_AFTER = 30 * 86400

# Mail providers anyone can sign up with: proving "ownership" of them means nothing.
CONSUMER_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "ymail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "zoho.com",
        "qq.com",
        "163.com",
        "126.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
        "tuta.io",
        "hushmail.com",
    }
)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize(domain: str) -> str:
    """Lower-case IDNA form; refuse anything that is not a registrable-looking domain."""
    text = domain.strip().lower().rstrip(".")
    if text.startswith("@"):
        text = text[1:]
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"{domain!r} is not a valid domain name") from None
    labels = text.split(".")
    if len(labels) < 2 or len(text) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidInput(f"{domain!r} is not a valid domain name (expected e.g. acme.com)")
    if labels[-1].isdigit():
        raise InvalidInput(f"{domain!r} is an address, not a domain name")
    return text


def txt_record(domain: Domain) -> tuple[str, str]:
    """(record name, exact TXT value) the admin must publish."""
    return f"{RECORD_PREFIX}.{domain.domain}", f"{VALUE_PREFIX}{domain.verification_token}"


def add_domain(store: Store, clock: Clock, actor: audit.Actor, org_id: str, domain: str) -> Domain:
    name = normalize(domain)
    if name in CONSUMER_DOMAINS:
        raise InvalidInput(f"{name} is a public mail provider; only company domains can be added")
    now = clock.now()
    with store.transaction():
        store.organizations.get(org_id)
        owner = store.domains.verified_owner(name)
        if owner is not None and owner.organization_id != org_id:
            raise Conflict(f"{name} is already verified by another organization")
        record = Domain(
            id=new_id("dom"),
            organization_id=org_id,
            domain=name,
            state="pending",
            verification_token=secrets.token_urlsafe(24),
            created_at=now,
            next_check_at=now + 60,
        )
        store.domains.create(record)
        events.record(store, "organization_domain.created", org_id, describe(record), now)
        audit.record(
            store, actor, "domain.added", now, organization_id=org_id, target=record.id, domain=name
        )
    return record


def find_domain(store: Store, org_id: str, domain: str) -> Domain:
    return store.domains.find(org_id, normalize(domain))


def remove_domain(store: Store, clock: Clock, actor: audit.Actor, org_id: str, domain: str) -> None:
    now = clock.now()
    with store.transaction():
        record = find_domain(store, org_id, domain)
        store.domains.delete(record.id)
        events.record(store, "organization_domain.deleted", org_id, describe(record), now)
        audit.record(
            store,
            actor,
            "domain.removed",
            now,
            organization_id=org_id,
            target=record.id,
            domain=record.domain,
        )


Outcome = Literal["verified", "not_found", "wrong_value", "timeout", "dns_error", "claimed"]


@dataclass(frozen=True)
class Verification:
    domain: Domain
    outcome: Outcome
    message: str  # plain words for the admin


def interpret(domain: Domain, answer: object) -> tuple[Outcome, str]:
    """What a TXT look-up means for this domain, in words an IT admin understands."""
    name, value = txt_record(domain)
    status = getattr(answer, "status", "error")
    values: tuple[str, ...] = tuple(getattr(answer, "values", ()))
    if status == "found" and value in (v.strip() for v in values):
        return "verified", f"{domain.domain} is verified."
    if status == "found":
        shown = ", ".join(repr(v) for v in values[:3])
        return "wrong_value", (
            f"A TXT record {name} exists but holds {shown}, not the expected "
            f"value {value!r}. Check for typos or extra quotes."
        )
    if status in ("nxdomain", "no_answer"):
        return "not_found", (
            f"No TXT record named {name} was found (NXDOMAIN). Create it, then "
            "allow a few minutes for DNS to update."
        )
    if status == "timeout":
        return "timeout", "The DNS server did not answer in time. Try again in a minute."
    detail = getattr(answer, "detail", "") or status
    return "dns_error", f"The DNS look-up failed ({detail}). Try again later."


# Runs a synchronous store call somewhere (Services.run: on the store thread).
Runner = Callable[..., Awaitable[Any]]


async def _direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def record_verification(
    store: Store, clock: Clock, actor: audit.Actor, record: Domain, answer: object
) -> Verification:
    """Record what a TXT look-up for `record` answered (the store half of a verification)."""
    return _record_outcome(store, clock, actor, record, *interpret(record, answer))


async def verify_domain(
    store: Store,
    resolver: TxtResolver,
    clock: Clock,
    actor: audit.Actor,
    org_id: str,
    domain: str,
    *,
    run: Runner | None = None,
) -> Verification:
    """Look the TXT record up now and record the outcome (CLI, UI and the background re-check).
    `run` carries the store calls off the event loop (see the module docstring)."""
    call = run or _direct
    record: Domain = await call(find_domain, store, org_id, domain)
    if record.state == "verified":
        return Verification(record, "verified", f"{record.domain} is already verified.")
    answer = await resolver.lookup(txt_record(record)[0])
    result: Verification = await call(record_verification, store, clock, actor, record, answer)
    return result


def _record_outcome(
    store: Store, clock: Clock, actor: audit.Actor, record: Domain, outcome: Outcome, message: str
) -> Verification:
    now = clock.now()
    with store.transaction():
        owner = store.domains.verified_owner(record.domain)
        if (
            outcome == "verified"
            and owner is not None
            and owner.organization_id != record.organization_id
        ):
            outcome, message = (
                "claimed",
                f"{record.domain} is already verified by another organization.",
            )
        if outcome == "verified":
            updated = store.domains.update(
                record.id,
                state="verified",
                verified_at=now,
                last_checked_at=now,
                last_error=None,
                next_check_at=None,
            )
            events.record(
                store,
                "organization_domain.verified",
                record.organization_id,
                describe(updated),
                now,
            )
        else:
            count = record.check_count + 1
            expired = now - record.created_at > GIVE_UP_AFTER
            updated = store.domains.update(
                record.id,
                state="failed" if expired else "pending",
                last_checked_at=now,
                last_error=message,
                check_count=count,
                next_check_at=None if expired else now + min(60 * 2 ** min(count, 10), 6 * 3600),
            )
            if expired:
                events.record(
                    store,
                    "organization_domain.verification_failed",
                    record.organization_id,
                    describe(updated),
                    now,
                )
        audit.record(
            store,
            actor,
            f"domain.verification_{outcome}",
            now,
            organization_id=record.organization_id,
            target=record.id,
            domain=record.domain,
            message=message,
        )
    return Verification(updated, outcome, message)


async def recheck_pending(
    store: Store,
    resolver: TxtResolver,
    clock: Clock,
    limit: int = 20,
    *,
    run: Runner | None = None,
) -> list[Verification]:
    """Background task: re-check pending domains whose backoff has elapsed."""
    call = run or _direct
    results = []
    due: list[Domain] = await call(store.domains.due_for_check, clock.now(), limit)
    for record in due:
        try:
            answer = await resolver.lookup(txt_record(record)[0])
            results.append(
                await call(record_verification, store, clock, audit.SYSTEM, record, answer)
            )
        except NotFound:
            continue  # removed meanwhile
    return results


def is_verified_for(store: Store, org_id: str, email_domain: str) -> bool:
    owner = store.domains.verified_owner(email_domain.lower())
    return owner is not None and owner.organization_id == org_id


def describe(domain: Domain) -> dict[str, object]:
    name, value = txt_record(domain)
    return {
        "object": "organization_domain",
        "id": domain.id,
        "organization_id": domain.organization_id,
        "domain": domain.domain,
        "state": domain.state,
        "txt_record": {"name": name, "type": "TXT", "value": value},
    }
