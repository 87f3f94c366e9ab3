"""Writing one request's audit entry, with who, from where and under which request id."""

from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from sqlalchemy.orm import Session

from audit import store
from policies import Decision


@dataclass(frozen=True)
class Origin:
    """Where an action came from: an HTTP request, or the command line."""

    request_id: str | None
    client_address: str | None

    @classmethod
    def of(cls, request: Request) -> "Origin":
        return cls(
            getattr(request.state, "request_id", None),
            request.client.host if request.client else None,
        )


@dataclass(frozen=True)
class Actor:
    """Who acted, as the log names them."""

    client_id: str
    organization: str


def seq_runs(seqs: list[int]) -> list[list[int]]:
    """[1, 2, 3, 7] → [[1, 3], [7, 7]]: the records touched, compactly and exactly."""
    runs: list[list[int]] = []
    for seq in sorted(seqs):
        if runs and seq == runs[-1][1] + 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs


def record(
    session: Session,
    where: Request | Origin,
    actor: Actor | None,
    *,
    action: str,
    allowed: bool,
    reason: str,
    decision: Decision | None = None,
    product: str | None = None,
    purpose: str | None = None,
    seqs: list[int] | None = None,
    record_count: int | None = None,
    grant_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """Append the entry in the request's transaction; its index. Raises AuditWriteError."""
    seqs = seqs or []
    origin = where if isinstance(where, Origin) else Origin.of(where)
    (index,) = store.append(
        session,
        [
            store.AuditEvent(
                action=action,
                decision="allow" if allowed else "deny",
                reason=reason,
                actor=actor.client_id if actor else None,
                organization=actor.organization if actor else None,
                product=product,
                purpose=purpose or None,
                policy_version=decision.policy_version if decision else None,
                view=decision.view if decision and decision.allowed else None,
                record_count=len(seqs) if record_count is None else record_count,
                records=seq_runs(seqs),
                grant_id=grant_id,
                request_id=origin.request_id,
                client_address=origin.client_address,
                details=details or {},
            )
        ],
    )
    return index


class _Acting(Protocol):
    @property
    def actor(self) -> Actor: ...


class Decided(Protocol):
    """An allowed access: who, and the decision that let them."""

    @property
    def caller(self) -> _Acting: ...

    @property
    def decision(self) -> Decision: ...


def record_allowed(
    session: Session, where: Request | Origin, access: Decided, *, action: str, **facts: Any
) -> int:
    """The entry of an allowed action, with the decision's reason, version and view."""
    return record(
        session,
        where,
        access.caller.actor,
        action=action,
        allowed=True,
        reason=access.decision.reason,
        decision=access.decision,
        **facts,
    )
