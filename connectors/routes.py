"""Every route of the exchange's API (docs/API contract), as `Call`s to send.

Names follow what the caller wants, not the path: `publish`, `records`, `approve`.
Listings are `Paged` (the client iterates every page); NDJSON reads are `Streamed`.
Times are RFC 3339 strings, as the API takes them.
"""

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from connectors import calls
from connectors.calls import NDJSON, Call, Paged, Streamed
from connectors.errors import UnexpectedAnswer
from connectors.models import (
    AccessRequest,
    Aggregates,
    Approved,
    AuditEntry,
    ConsistencyProof,
    CrossCheck,
    DryRunResult,
    EventBatch,
    Explanation,
    Grant,
    ImageStored,
    InclusionProof,
    Linkage,
    OneRecord,
    Organization,
    Policy,
    PolicyCase,
    PolicyChanged,
    Principal,
    PrincipalCreated,
    Product,
    PublishOutcome,
    Subscription,
    SubscriptionCreated,
    Token,
    UsageRow,
)


def _p(segment: str | int) -> str:
    return quote(str(segment), safe="")


def _paged(path: str, key: str, kind: Any, limit: int | None, **params: Any) -> Paged[Any]:
    """A listing of `key` items, each validated as `kind` (None: left as dicts)."""

    def page(cursor: str | None) -> Call[dict[str, Any]]:
        query = params | {"cursor": cursor, "limit": limit}
        return Call("GET", path, calls.body, params=query, idempotent=True)

    def items(answer: dict[str, Any]) -> Iterable[Any]:
        found = answer.get(key)
        if not isinstance(found, list):
            raise UnexpectedAnswer(f"the listing has no list {key!r}")
        return found if kind is None else (kind.model_validate(item) for item in found)

    return Paged(page, items)


# Tokens and health


def token(client_id: str, client_secret: str) -> Call[Token]:
    form = {"grant_type": "client_credentials", "client_id": client_id}
    return Call(
        "POST",
        "/oauth/token",
        calls.model(Token),
        content=urlencode(form | {"client_secret": client_secret}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        idempotent=True,
        authenticated=False,
    )


def jwks() -> Call[dict[str, Any]]:
    return Call("GET", "/.well-known/jwks.json", calls.body, idempotent=True, authenticated=False)


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/healthz", calls.body, idempotent=True, authenticated=False)


def ready() -> Call[dict[str, Any]]:
    return Call("GET", "/readyz", calls.body, idempotent=True, authenticated=False)


# Participants (admin)


def create_organization(slug: str, name: str, kind: str) -> Call[Organization]:
    data = {"slug": slug, "name": name, "kind": kind}
    return Call("POST", "/v1/organizations", calls.model(Organization), json=data)


def organizations(*, limit: int | None = None) -> Paged[Organization]:
    return _paged("/v1/organizations", "organizations", Organization, limit)


def create_principal(organization: str, name: str, roles: list[str]) -> Call[PrincipalCreated]:
    path = f"/v1/organizations/{_p(organization)}/principals"
    data = {"name": name, "roles": roles}
    return Call("POST", path, calls.model(PrincipalCreated), json=data)


def principals(organization: str, *, limit: int | None = None) -> Paged[Principal]:
    path = f"/v1/organizations/{_p(organization)}/principals"
    return _paged(path, "principals", Principal, limit)


# Catalog


def register_product(definition: dict[str, Any]) -> Call[Product]:
    return Call("POST", "/v1/products", calls.model(Product), json=definition)


def products(
    *,
    q: str | None = None,
    tier: str | None = None,
    tag: str | None = None,
    publisher: str | None = None,
    limit: int | None = None,
) -> Paged[Product]:
    return _paged(
        "/v1/products", "products", Product, limit, q=q, tier=tier, tag=tag, publisher=publisher
    )


def product(slug: str, *, version: int | None = None) -> Call[Product]:
    path = f"/v1/products/{_p(slug)}"
    return Call("GET", path, calls.model(Product), params={"version": version}, idempotent=True)


def update_product(slug: str, changes: dict[str, Any]) -> Call[Product]:
    """A change makes a new version of the product."""
    return Call("PATCH", f"/v1/products/{_p(slug)}", calls.model(Product), json=changes)


# Records


def publish(
    product: str, records: list[dict[str, Any]], *, atomic: bool = False
) -> Call[PublishOutcome]:
    """Good records are stored and bad ones listed in `rejected` (by index);
    `atomic=True` stores none if any is bad (ValidationFailed). Idempotent: each
    record carries the publisher's `id`, and one sent again unchanged is `unchanged`."""
    path = f"/v1/products/{_p(product)}/records"
    return Call(
        "POST",
        path,
        calls.model(PublishOutcome),
        params={"atomic": str(atomic).lower()},
        json=records,
        idempotent=True,
    )


def _read_params(
    purpose: str, start: str | None, end: str | None, filters: dict[str, Any] | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"purpose": purpose, "from": start, "to": end}
    if filters:
        params["filter"] = [f"{key}={value}" for key, value in filters.items()]
    return params


def records(
    product: str,
    *,
    purpose: str,
    start: str | None = None,
    end: str | None = None,
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
) -> Paged[dict[str, Any]]:
    """Records in the view the decision gives, page after page. `filters` are
    `field: value` equalities."""
    params = _read_params(purpose, start, end, filters)
    return _paged(f"/v1/products/{_p(product)}/records", "records", None, limit, **params)


def stream_records(
    product: str,
    *,
    purpose: str,
    start: str | None = None,
    end: str | None = None,
    filters: dict[str, Any] | None = None,
    limit: int | None = None,
) -> Streamed:
    """The same records as NDJSON, one a line: for reads too big for memory."""
    params = _read_params(purpose, start, end, filters) | {"limit": limit}
    path = f"/v1/products/{_p(product)}/records"

    def page(cursor: str | None) -> Call[Any]:
        return Call(
            "GET",
            path,
            calls.ok,
            params=params | {"cursor": cursor},
            headers={"Accept": NDJSON},
            idempotent=True,
        )

    return Streamed(page, next_header="exchange-next-cursor")


def record(product: str, record_id: str, *, purpose: str) -> Call[OneRecord]:
    path = f"/v1/products/{_p(product)}/records/{_p(record_id)}"
    return Call("GET", path, calls.model(OneRecord), params={"purpose": purpose}, idempotent=True)


def put_image(
    product: str, record_id: str, data: bytes, *, content_type: str = "image/jpeg"
) -> Call[ImageStored]:
    """The record's photo; the same bytes again are a no-op (`stored: false`)."""
    path = f"/v1/products/{_p(product)}/records/{_p(record_id)}/image"
    return Call(
        "PUT",
        path,
        calls.model(ImageStored),
        content=data,
        headers={"Content-Type": content_type},
        idempotent=True,
    )


def image(product: str, record_id: str, *, purpose: str) -> Call[bytes]:
    """The image as the view serves it (redacted where it says so)."""
    path = f"/v1/products/{_p(product)}/records/{_p(record_id)}/image"
    return Call("GET", path, calls.content, params={"purpose": purpose}, idempotent=True)


def reidentify(
    product: str, *, purpose: str, pseudonym: str, consumer: str, case_reference: str
) -> Call[dict[str, Any]]:
    path = f"/v1/products/{_p(product)}/reidentify"
    data = {"pseudonym": pseudonym, "consumer": consumer, "case_reference": case_reference}
    return Call("POST", path, calls.body, params={"purpose": purpose}, json=data)


def aggregates(
    product: str,
    *,
    purpose: str,
    by: Iterable[str],
    epsilon: float | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Call[Aggregates]:
    """Noised, thresholded counts; each call spends privacy budget, so not retried."""
    params = {"purpose": purpose, "by": list(by), "epsilon": epsilon, "from": start, "to": end}
    return Call("GET", f"/v1/products/{_p(product)}/aggregates", calls.model(Aggregates), params)


# Decisions, access requests, grants


def decide(
    *,
    product: str | None = None,
    system: str | None = None,
    action: str = "read",
    purpose: str | None = None,
) -> Call[Explanation]:
    data = {"product": product, "system": system, "action": action, "purpose": purpose}
    body = {k: v for k, v in data.items() if v is not None}
    return Call("POST", "/v1/decisions", calls.model(Explanation), json=body, idempotent=True)


def request_access(
    product: str,
    *,
    purpose: str,
    justification: str,
    days: int,
    scope: str | None = None,
    partner: str | None = None,
) -> Call[AccessRequest]:
    """Ask for a grant: to read a regulated product, or (with `partner`) to
    cross-check two products."""
    data = {"product": product, "purpose": purpose, "justification": justification, "days": days}
    for name, value in (("scope", scope), ("partner", partner)):
        if value is not None:
            data[name] = value
    return Call("POST", "/v1/access-requests", calls.model(AccessRequest), json=data)


def access_requests(*, status: str | None = None, limit: int | None = None) -> Paged[AccessRequest]:
    return _paged("/v1/access-requests", "requests", AccessRequest, limit, status=status)


def access_request(request_id: int) -> Call[AccessRequest]:
    path = f"/v1/access-requests/{_p(request_id)}"
    return Call("GET", path, calls.model(AccessRequest), idempotent=True)


def approve(
    request_id: int,
    *,
    reason: str,
    days: int | None = None,
    quota: int | None = None,
    scope: str | None = None,
) -> Call[Approved]:
    data = {"reason": reason, "days": days, "quota": quota, "scope": scope}
    path = f"/v1/access-requests/{_p(request_id)}/approve"
    body = {k: v for k, v in data.items() if v is not None}
    return Call("POST", path, calls.model(Approved), json=body)


def deny(request_id: int, *, reason: str) -> Call[AccessRequest]:
    path = f"/v1/access-requests/{_p(request_id)}/deny"
    return Call("POST", path, calls.model(AccessRequest), json={"reason": reason})


def grants(*, active: bool | None = None, limit: int | None = None) -> Paged[Grant]:
    flag = None if active is None else str(active).lower()
    return _paged("/v1/grants", "grants", Grant, limit, active=flag)


def grant(grant_id: int) -> Call[Grant]:
    return Call("GET", f"/v1/grants/{_p(grant_id)}", calls.model(Grant), idempotent=True)


def revoke_grant(grant_id: int, *, reason: str) -> Call[Grant]:
    path = f"/v1/grants/{_p(grant_id)}"
    # Not retried: a second revocation of the same grant is a conflict.
    return Call("DELETE", path, calls.model(Grant), params={"reason": reason})


# Policies (stewards)


def policy() -> Call[Policy]:
    return Call("GET", "/v1/policies", calls.model(Policy), idempotent=True)


def change_policy(
    lines: list[str],
    *,
    reason: str,
    expected_version: int | None = None,
    override_tests: bool = False,
) -> Call[PolicyChanged]:
    """Each change makes a new version: never sent twice by the client."""
    data = {
        "lines": lines,
        "reason": reason,
        "expected_version": expected_version,
        "override_tests": override_tests,
    }
    return Call("PUT", "/v1/policies", calls.model(PolicyChanged), json=data)


def dry_run(
    lines: list[str], *, matrix: dict[str, Any] | None = None, replay: dict[str, Any] | None = None
) -> Call[DryRunResult]:
    data = {k: v for k, v in {"lines": lines, "matrix": matrix, "replay": replay}.items() if v}
    return Call(
        "POST", "/v1/policies/dry-run", calls.model(DryRunResult), json=data, idempotent=True
    )


def policy_versions(*, limit: int | None = None) -> Paged[dict[str, Any]]:
    return _paged("/v1/policies/versions", "versions", None, limit)


def policy_version(number: int, *, lines: bool = True) -> Call[Policy]:
    path = f"/v1/policies/versions/{_p(number)}"
    params = {"lines": str(lines).lower()}
    return Call("GET", path, calls.model(Policy), params=params, idempotent=True)


def restore_policy(
    number: int, *, reason: str, override_tests: bool = False
) -> Call[PolicyChanged]:
    path = f"/v1/policies/versions/{_p(number)}/restore"
    data = {"reason": reason, "override_tests": override_tests}
    return Call("POST", path, calls.model(PolicyChanged), json=data)


def policy_tests() -> Call[list[PolicyCase]]:
    return Call("GET", "/v1/policies/tests", calls.models(PolicyCase, "tests"), idempotent=True)


def add_policy_test(case: dict[str, Any]) -> Call[PolicyCase]:
    return Call("POST", "/v1/policies/tests", calls.model(PolicyCase), json=case)


def delete_policy_test(test_id: int, *, reason: str) -> Call[None]:
    path = f"/v1/policies/tests/{_p(test_id)}"
    return Call("DELETE", path, calls.nothing, params={"reason": reason})


# Feeds


def subscribe(
    product: str,
    *,
    purpose: str,
    delivery: str = "pull",
    url: str | None = None,
    filter: dict[str, Any] | None = None,
    fields: list[str] | None = None,
    batch_size: int | None = None,
) -> Call[SubscriptionCreated]:
    """A feed of the product's new records: `delivery="pull"`, or `"webhook"` to
    `url` (the answer's `secret` signs the deliveries and is shown only now)."""
    data = {
        "product": product,
        "purpose": purpose,
        "delivery": delivery,
        "url": url,
        "filter": filter,
        "fields": fields,
        "batch_size": batch_size,
    }
    body = {k: v for k, v in data.items() if v is not None}
    return Call("POST", "/v1/subscriptions", calls.model(SubscriptionCreated), json=body)


def subscriptions() -> Call[list[Subscription]]:
    return Call(
        "GET", "/v1/subscriptions", calls.models(Subscription, "subscriptions"), idempotent=True
    )


def subscription(subscription_id: int) -> Call[Subscription]:
    path = f"/v1/subscriptions/{_p(subscription_id)}"
    return Call("GET", path, calls.model(Subscription), idempotent=True)


def unsubscribe(subscription_id: int) -> Call[None]:
    path = f"/v1/subscriptions/{_p(subscription_id)}"
    return Call("DELETE", path, calls.nothing)


def pause(subscription_id: int) -> Call[Subscription]:
    path = f"/v1/subscriptions/{_p(subscription_id)}/pause"
    return Call("POST", path, calls.model(Subscription), idempotent=True)


def resume(subscription_id: int) -> Call[Subscription]:
    path = f"/v1/subscriptions/{_p(subscription_id)}/resume"
    return Call("POST", path, calls.model(Subscription), idempotent=True)


def rotate_secret(subscription_id: int, *, overlap_seconds: int | None = None) -> Call[Any]:
    """A new signing secret, shown once (never retried: a second call rotates again)."""
    path = f"/v1/subscriptions/{_p(subscription_id)}/secret"
    data = {} if overlap_seconds is None else {"overlap_seconds": overlap_seconds}
    return Call("POST", path, calls.body, json=data)


def pull(
    subscription_id: int, *, cursor: str | None = None, wait: float = 0.0, limit: int = 100
) -> Call[EventBatch]:
    """Events after the cursor (which acknowledges those before it), waiting up to
    `wait` seconds for some."""
    path = f"/v1/subscriptions/{_p(subscription_id)}/events"
    params = {"cursor": cursor, "wait": wait or None, "limit": limit}
    return Call("GET", path, calls.model(EventBatch), params=params, idempotent=True)


def deliveries(subscription_id: int, *, limit: int | None = None) -> Paged[dict[str, Any]]:
    return _paged(f"/v1/subscriptions/{_p(subscription_id)}/deliveries", "attempts", None, limit)


def redeliver(subscription_id: int, *, events: list[int] | None = None) -> Call[int]:
    """Dead letters sent again (all, or the events listed); how many were requeued."""
    path = f"/v1/subscriptions/{_p(subscription_id)}/redeliver"
    data = {} if events is None else {"events": events}
    return Call("POST", path, lambda r: int(calls.body(r)["requeued"]), json=data)


# Audit (auditors) and usage (publishers)


def _audit_filters(**given: Any) -> dict[str, Any]:
    renamed = {"start": "from", "end": "to"}
    return {renamed.get(key, key): value for key, value in given.items()}


def audit_entries(
    *,
    actor: str | None = None,
    organization: str | None = None,
    product: str | None = None,
    action: str | None = None,
    decision: str | None = None,
    purpose: str | None = None,
    grant: int | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: int | None = None,
) -> Paged[AuditEntry]:
    filters = _audit_filters(
        actor=actor,
        organization=organization,
        product=product,
        action=action,
        decision=decision,
        purpose=purpose,
        grant=grant,
        start=start,
        end=end,
    )
    return _paged("/v1/audit/entries", "entries", AuditEntry, limit, **filters)


def export_audit(
    *,
    actor: str | None = None,
    organization: str | None = None,
    product: str | None = None,
    action: str | None = None,
    decision: str | None = None,
    purpose: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Streamed:
    """NDJSON: each entry with its index and leaf hash, then the covering checkpoint."""
    filters = _audit_filters(
        actor=actor,
        organization=organization,
        product=product,
        action=action,
        decision=decision,
        purpose=purpose,
        start=start,
        end=end,
    )

    def page(cursor: str | None) -> Call[Any]:
        query = filters | {"cursor": cursor}
        return Call("GET", "/v1/audit/export", calls.ok, params=query, idempotent=True)

    return Streamed(page, next_header="exchange-next-cursor")


def checkpoint(*, fresh: bool = False) -> Call[str]:
    """The latest signed checkpoint, a signed note; `fresh` signs one covering all."""
    params = {"fresh": "true" if fresh else None}
    return Call("GET", "/v1/audit/checkpoint", calls.text, params=params, idempotent=True)


def audit_public_key() -> Call[str]:
    return Call("GET", "/v1/audit/public-key", calls.text, idempotent=True, authenticated=False)


def inclusion_proof(index: int, size: int) -> Call[InclusionProof]:
    params = {"index": index, "size": size}
    return Call(
        "GET", "/v1/audit/proofs/inclusion", calls.model(InclusionProof), params, idempotent=True
    )


def consistency_proof(old_size: int, new_size: int) -> Call[ConsistencyProof]:
    params = {"from": old_size, "to": new_size}
    return Call(
        "GET",
        "/v1/audit/proofs/consistency",
        calls.model(ConsistencyProof),
        params,
        idempotent=True,
    )


def subject_accesses(
    product: str, subject: str, *, limit: int | None = None
) -> Call[list[AuditEntry]]:
    """Who accessed records about one subject (a plate, a phone number)."""
    data = {"product": product, "subject": subject, "limit": limit}
    body = {k: v for k, v in data.items() if v is not None}
    read = calls.models(AuditEntry, "entries")
    return Call("POST", "/v1/audit/subjects", read, json=body, idempotent=True)


def usage(
    *, product: str | None = None, start: str | None = None, end: str | None = None
) -> Call[list[UsageRow]]:
    params = {"product": product, "from": start, "to": end}
    return Call("GET", "/v1/usage", calls.models(UsageRow, "usage"), params, idempotent=True)


def metrics() -> Call[str]:
    return Call("GET", "/metrics", calls.text, idempotent=True)


def link(
    kind: str,
    value: str,
    *,
    purpose: str,
    products: list[str] | None = None,
    limit: int | None = None,
    cursors: dict[str, str] | None = None,
) -> Call[Linkage]:
    """Every record about one subject, by product (government subscribers)."""
    given: dict[str, Any] = {"products": products, "limit": limit, "cursors": cursors}
    data: dict[str, Any] = {"kind": kind, "value": value, "purpose": purpose}
    data |= {name: item for name, item in given.items() if item is not None}
    return Call("POST", "/v1/linkage", calls.model(Linkage), json=data, idempotent=True)


def cross_check(
    left: str,
    right: str,
    *,
    purpose: str,
    count_by: tuple[str, str] | None = None,
    limit: int | None = None,
) -> Call[CrossCheck]:
    """Two products compared on their subject key: only the matches, and counts.
    `count_by`: (product, field) to count the matches by."""
    data: dict[str, Any] = {"left": left, "right": right, "purpose": purpose}
    if count_by is not None:
        data["count_by"] = {"product": count_by[0], "field": count_by[1]}
    if limit is not None:
        data["limit"] = limit
    return Call("POST", "/v1/cross-checks", calls.model(CrossCheck), json=data, idempotent=True)


def sharing_figures(*, start: str | None = None, end: str | None = None) -> Call[dict[str, Any]]:
    """Per product and organisation (stewards, auditors): requests, replies,
    refusals, feed delivery, freshness."""
    params = {"from": start, "to": end}
    return Call("GET", "/v1/metrics/sharing", calls.body, params, idempotent=True)


def sharing_csv(*, start: str | None = None, end: str | None = None) -> Call[str]:
    params = {"from": start, "to": end, "format": "csv"}
    return Call("GET", "/v1/metrics/sharing", calls.text, params, idempotent=True)
