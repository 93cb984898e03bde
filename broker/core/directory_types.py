"""Records of the Directory Sync aggregate besides DirectoryUser/DirectoryGroup (models.py):
the directory itself, role mappings, journal entries, and what a SCIM write asks for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from broker.core.models import Seat

T = TypeVar("T")

DirectoryState = Literal["active", "inactive"]


@dataclass(frozen=True)
class Directory:
    id: str  # dir_...
    organization_id: str
    state: DirectoryState
    token_hash: str | None
    created_at: float
    updated_at: float
    previous_token_hash: str | None = None
    previous_token_expires_at: float | None = None
    token_rotated_at: float | None = None


@dataclass(frozen=True)
class RoleMapping:
    """Members of a group get `role` (and `seat` when set). Higher priority wins."""

    id: str  # rmap_...
    organization_id: str
    role: str
    priority: int
    created_at: float
    group_id: str | None = None
    group_name: str | None = None
    seat: Seat | None = None


@dataclass(frozen=True)
class UserAttributes:
    """What a SCIM write says about a user, extracted by the edge; `raw` is the whole
    resource (without id/meta/groups) kept so that unknown extension attributes survive."""

    user_name: str
    active: bool
    raw: dict[str, Any]
    external_id: str | None = None
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None


@dataclass(frozen=True)
class GroupAttributes:
    display_name: str
    raw: dict[str, Any]  # without `members`
    external_id: str | None = None


@dataclass(frozen=True)
class MemberChange:
    """Membership edits of one group write: `replace` sets the whole list (None: keep)."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    replace: tuple[str, ...] | None = None
    remove_all: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int  # the exact number of matches (IdPs page until a page comes back short)


@dataclass(frozen=True)
class JournalEntry:
    directory_id: str | None
    organization_id: str | None
    at: float
    method: str
    path: str
    status: int
    request_body: str | None = None
    response_body: str | None = None
    change: dict[str, Any] = field(default_factory=dict)
    user_agent: str | None = None
    remote_addr: str | None = None
    request_id: str | None = None
    ms: float | None = None
    id: int = 0
