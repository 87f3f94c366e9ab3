"""Typed requests and answers of the exchange's API, as the SDK returns them.

Answers keep any member this version of the SDK does not know (`extra="allow"`),
so a newer exchange never breaks an older client. Requests are the routes'
keyword arguments (connectors/routes.py), so a misspelt option is a TypeError
before anything is sent. Records themselves stay plain dicts: their fields are
each product's own.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# Identity


class Token(Answer):
    access_token: str = Field(repr=False)
    token_type: str = "Bearer"
    expires_in: int


class Organization(Answer):
    slug: str
    name: str
    kind: str
    created_at: str


class Principal(Answer):
    client_id: str
    name: str
    organization: str
    roles: list[str]
    active: bool
    created_at: str


class PrincipalCreated(Principal):
    client_secret: str = Field(repr=False, description="Shown once; store it safely.")


# Catalog and records


class FieldSpec(Answer):
    name: str
    type: str
    sensitivity: str = "none"
    required: bool = True
    description: str | None = None


class Product(Answer):
    slug: str
    title: str
    description: str | None = None
    tags: list[str] = []
    tier: str
    purposes: list[str]
    retention_days: int
    fields: list[FieldSpec]
    subject_field: str | None = None
    time_field: str | None = None
    version: int
    publisher: str
    record_count: int
    created_at: str
    updated_at: str


class PublishOutcome(Answer):
    accepted: int
    unchanged: int
    rejected: list[dict[str, Any]]
    first_seq: int | None
    last_seq: int | None


class Shaped(Answer):
    """How the records of a read were shaped: view, per-field treatment, grant."""

    product: str
    version: int
    purpose: str
    view: str
    label: str
    fields: dict[str, str]
    pseudonyms_until: str | None = None
    grant: int | None = None


class OneRecord(Shaped):
    record: dict[str, Any]


class ImageStored(Answer):
    id: str
    stored: bool
    media_type: str
    width: int
    height: int
    bytes: int
    boxes: int
    original_sha256: str


class Aggregates(Answer):
    product: str
    purpose: str
    by: list[str]
    label: str
    epsilon: float
    groups: list[dict[str, Any]]
    budget: dict[str, Any]


# Decisions, requests, grants


class Explanation(Answer):
    allowed: bool
    reason: str
    hint: str | None = None
    rule: list[str] | None = None
    policy_version: str
    view: str | None = None
    fields: dict[str, str] | None = None
    grant: int | None = None


class AccessRequest(Answer):
    id: int
    organization: str
    requester: str
    product: str
    partner: str | None = None
    purpose: str
    justification: str
    days: int
    status: str
    created_at: str
    due_at: str
    overdue: bool
    decided_at: str | None = None
    decision_reason: str | None = None
    grant_id: int | None = None


class Grant(Answer):
    id: int
    organization: str
    product: str
    partner: str | None = None
    purpose: str
    state: str
    created_at: str
    expires_at: str
    quota: int | None = None
    used: int = 0
    remaining: int | None = None
    request_id: int | None = None


class Approved(Answer):
    request: AccessRequest
    grant: Grant


# Linkage and cross-checks


class LinkedPart(Answer):
    product: str
    view: str
    records: list[dict[str, Any]]
    next_cursor: str | None = None
    audit_index: int


class Linkage(Answer):
    linkage: str
    kind: str
    purpose: str
    parts: list[LinkedPart]
    refused: list[dict[str, Any]]


class Match(Answer):
    key: str
    left: list[dict[str, Any]]
    right: list[dict[str, Any]]


class CrossCheck(Answer):
    check: str
    left: str
    right: str
    counts: dict[str, int]
    counted_by: dict[str, Any] | None = None
    matches: list[Match]
    truncated: bool
    grant: int | None = None


# Policies


class Policy(Answer):
    version: int
    digest: str
    created_at: str
    author: str | None
    reason: str | None
    lines: list[str] = []


class PolicyChanged(Answer):
    version: dict[str, Any]
    added_lines: list[str]
    removed_lines: list[str]
    failing_tests: list[dict[str, Any]]


class DryRunResult(Answer):
    base_version: int
    added_lines: list[str]
    removed_lines: list[str]
    failing_tests: list[dict[str, Any]]
    matrix: dict[str, Any] | list[Any] | None = None
    replay: dict[str, Any] | list[Any] | None = None


class PolicyCase(Answer):
    id: int
    name: str
    organization: str
    product: str
    expect: str
    passes: bool


# Feeds


class Subscription(Answer):
    id: int
    product: str
    purpose: str
    delivery: Literal["webhook", "pull"]
    url: str | None = None
    filter: dict[str, Any] | None = None
    fields: list[str] | None = None
    batch_size: int
    status: str
    status_reason: str | None = None
    events: int
    health: dict[str, Any]


class SubscriptionCreated(Subscription):
    secret: str | None = Field(default=None, repr=False, description="Webhooks: shown once.")


class EventBatch(Shaped):
    """Pulled events; `next_cursor` acknowledges them when passed to the next pull."""

    events: list[dict[str, Any]]
    next_cursor: str


# Audit


class AuditEntry(Answer):
    """One logged access, where it sits in the log and its hashes."""

    index: int
    entry: dict[str, Any]
    leaf_hash: str
    chain_hash: str


class InclusionProof(Answer):
    index: int
    size: int
    leaf_hash: str
    root_hash: str
    proof: list[str]


class ConsistencyProof(Answer):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


class UsageRow(Answer):
    product: str
    organization: str | None
    purpose: str | None
    decision: str
    requests: int
    records: int
