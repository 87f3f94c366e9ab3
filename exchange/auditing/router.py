"""The auditor's view of the log: entries, exports, checkpoints and proofs.

Every route but the public key is for auditors, and every use of it is itself
an audit entry.
"""

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from audit import ProofError
from audit import store as log
from audit.export import export_line
from audit.store import AuditEntry
from exchange.auditing.subjects import indexed_value
from exchange.auditing.trail import record_allowed
from exchange.auth import SystemAccess, system_access
from exchange.catalog import service as catalog
from exchange.db import SessionDep
from exchange.errors import BadRequest, FieldError, NotFound
from exchange.pagination import decode_cursor, encode_cursor
from exchange.timeutil import query_time

router = APIRouter(prefix="/v1/audit", tags=["audit"])

ReadAudit = Annotated[SystemAccess, system_access("audit", "read")]
NDJSON = "application/x-ndjson"
EXPORT_MAX = 100_000


class EntryPublic(BaseModel):
    index: int
    entry: dict[str, Any]
    leaf_hash: str
    chain_hash: str


class EntryList(BaseModel):
    entries: list[EntryPublic]
    next_cursor: str | None


class InclusionProof(BaseModel):
    index: int
    size: int
    leaf_hash: str
    root_hash: str
    proof: list[str]


class ConsistencyProof(BaseModel):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


@dataclass(frozen=True)
class EntryFilters:
    """Which entries: every given filter must match."""

    actor: str | None = None
    organization: str | None = None
    product: str | None = None
    action: str | None = None
    decision: Annotated[str | None, Query(pattern="^(allow|deny)$")] = None
    purpose: str | None = None
    grant: str | None = None
    since: Annotated[str | None, Query(alias="from", description="RFC 3339, inclusive")] = None
    until: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive")] = None

    def apply(self, session: Session, query: Select[Any]) -> Select[Any]:
        for column, value in self.equalities().items():
            query = query.where(getattr(AuditEntry, column) == value)
        since, until = query_time(self.since, "from"), query_time(self.until, "to")
        if since is not None or until is not None:
            # A time range is an index range (times never decrease along the log),
            # so the (column, index) indexes serve the whole query.
            first, end = log.index_range(session, since, until)
            query = query.where(AuditEntry.index >= first, AuditEntry.index < end)
        return query

    def equalities(self) -> dict[str, str]:
        given = {
            "actor": self.actor,
            "organization": self.organization,
            "product": self.product,
            "action": self.action,
            "decision": self.decision,
            "purpose": self.purpose,
            "grant_id": self.grant,
        }
        return {column: value for column, value in given.items() if value is not None}

    def described(self) -> dict[str, str]:
        return self.equalities() | {
            k: v for k, v in (("from", self.since), ("to", self.until)) if v is not None
        }


Filters = Annotated[EntryFilters, Depends()]


def _public(rows: list[AuditEntry]) -> list[EntryPublic]:
    return [
        EntryPublic(
            index=r.index, entry=json.loads(r.body), leaf_hash=r.leaf_hash, chain_hash=r.chain_hash
        )
        for r in rows
    ]


def _audited(
    request: Request, session: SessionDep, access: SystemAccess, action: str, **facts: Any
) -> None:
    record_allowed(
        session,
        request,
        access,
        action=action,
        record_count=facts.pop("count", 0),
        details=facts,
    )


@router.get("/entries", response_model=EntryList)
def entries(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    filters: Filters,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryList:
    """Entries matching every given filter, oldest first, each with the exact
    hashed body and its hashes."""
    query = filters.apply(session, select(AuditEntry)).order_by(AuditEntry.index).limit(limit + 1)
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(AuditEntry.index > after)
    rows = list(session.scalars(query))
    more, rows = len(rows) > limit, rows[:limit]
    _audited(request, session, access, "audit.read", count=len(rows), filters=filters.described())
    return EntryList(
        entries=_public(rows),
        next_cursor=encode_cursor(rows[-1].index) if more else None,
    )


@router.get("/export", response_class=Response, responses={200: {"content": {NDJSON: {}}}})
def export(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    filters: Filters,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=EXPORT_MAX)] = 10_000,
) -> Response:
    """NDJSON for offline verification: first a freshly signed checkpoint, then the
    selected entries it covers, each with its leaf hash and inclusion proof.
    `python -m audit EXPORT --public-key KEY` verifies it. The next page's cursor
    is in `Exchange-Next-Cursor`."""
    checkpoint = request.app.state.signer.checkpoint(session)
    query = (
        filters.apply(session, select(AuditEntry))
        .where(AuditEntry.index < checkpoint.size)
        .order_by(AuditEntry.index)
        .limit(limit + 1)
    )
    if (after := decode_cursor(cursor)) is not None:
        query = query.where(AuditEntry.index > after)
    rows = list(session.scalars(query))
    more, rows = len(rows) > limit, rows[:limit]
    lines = [json.dumps({"checkpoint": checkpoint.note}, ensure_ascii=False) + "\n"]
    if rows:
        read = log.preloaded_reader(session, rows[0].index, rows[-1].index, checkpoint.size)
        lines += [
            export_line(
                row.index,
                bytes.fromhex(row.leaf_hash),
                json.loads(row.body),
                log.inclusion_proof(row.index, checkpoint.size, read),
            )
            for row in rows
        ]
    _audited(
        request,
        session,
        access,
        "audit.export",
        count=len(rows),
        filters=filters.described(),
        checkpoint_size=checkpoint.size,
    )
    headers = {"Exchange-Next-Cursor": encode_cursor(rows[-1].index)} if more else {}
    return Response("".join(lines), media_type=NDJSON, headers=headers)


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(
    request: Request, session: SessionDep, access: ReadAudit, fresh: bool = False
) -> str:
    """The latest signed checkpoint, as a signed note; `fresh=true` signs one
    covering every entry so far."""
    signer = request.app.state.signer
    kept = signer.checkpoint(session) if fresh else signer.latest(session)
    _audited(request, session, access, "audit.checkpoint", size=kept.size, fresh=fresh)
    return kept.note


@router.get("/public-key", response_class=PlainTextResponse)
def public_key(request: Request) -> str:
    """The checkpoint key as a signed-note verifier key: `name+keyid+base64(0x01 ‖ key)`."""
    return request.app.state.signer.verifier_key + "\n"


def _proof_failure(error: ProofError, *fields: str) -> BadRequest:
    return BadRequest(str(error), errors=[FieldError(str(error), field) for field in fields])


@router.get("/proofs/inclusion", response_model=InclusionProof)
def inclusion(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    index: Annotated[int, Query(ge=0)],
    size: Annotated[int, Query(ge=1)],
) -> InclusionProof:
    """RFC 6962 inclusion proof of entry `index` in the tree of `size` entries."""
    try:
        leaf, root, proof = log.inclusion(session, index, size)
    except ProofError as error:
        raise _proof_failure(error, "index", "size") from None
    _audited(request, session, access, "audit.proof", index=index, size=size)
    return InclusionProof(
        index=index,
        size=size,
        leaf_hash=leaf.hex(),
        root_hash=root.hex(),
        proof=[p.hex() for p in proof],
    )


@router.get("/proofs/consistency", response_model=ConsistencyProof)
def consistency(
    request: Request,
    session: SessionDep,
    access: ReadAudit,
    old: Annotated[int, Query(alias="from", ge=1)],
    new: Annotated[int, Query(alias="to", ge=1)],
) -> ConsistencyProof:
    """RFC 6962 proof that the tree of `from` entries is a prefix of the tree of `to`."""
    try:
        old_root, new_root, proof = log.consistency(session, old, new)
    except ProofError as error:
        raise _proof_failure(error, "from", "to") from None
    _audited(request, session, access, "audit.proof", old_size=old, new_size=new)
    return ConsistencyProof(
        old_size=old,
        new_size=new,
        old_root=old_root.hex(),
        new_root=new_root.hex(),
        proof=[p.hex() for p in proof],
    )


class SubjectQuery(BaseModel):
    product: str
    subject: str = Field(min_length=1, max_length=200, description="e.g. a plate, 粤A·12345")
    limit: int = Field(default=100, ge=1, le=1000)


@router.post("/subjects", response_model=EntryList)
def subject_accesses(
    request: Request, session: SessionDep, access: ReadAudit, query: SubjectQuery
) -> EntryList:
    """Every read that returned records about one subject of a product that declares
    a `subject_field` — an access report for a data subject. Sent in the body so the
    value never appears in a URL; the log keeps only its keyed hash. Where the
    product declares the subject's kind, any spelling of it is found (and so are
    reads indexed before the kind was declared, under the value as written)."""
    subjects = request.app.state.subjects
    try:
        kind = catalog.describe(session, query.product).definition.subject_kind
    except NotFound:
        kind = None
    subject = subjects.key(query.product, indexed_value(kind, query.subject))
    as_written = subjects.key(query.product, query.subject)
    rows = log.entries_about(session, sorted({subject, as_written}), query.limit)
    _audited(
        request,
        session,
        access,
        "audit.subject",
        count=len(rows),
        product=query.product,
        subject=subject,
    )
    return EntryList(
        entries=_public(rows),
        next_cursor=None,
    )
