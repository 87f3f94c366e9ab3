"""Organisations and principals (admins), tokens and their public keys (anyone)."""

import base64
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from exchange.auditing.trail import Actor, record, record_allowed
from exchange.auth import SystemAccess, system_access
from exchange.db import SessionDep
from exchange.errors import ExchangeError, Unauthorized
from exchange.identity import service
from exchange.identity.models import (
    OrganizationCreate,
    OrganizationPublic,
    PrincipalCreate,
    PrincipalCreated,
    PrincipalPublic,
)
from exchange.pagination import decode_cursor, encode_cursor

router = APIRouter(tags=["identity"])

ManageIdentity = Annotated[SystemAccess, system_access("identity", "manage")]


class OrganizationList(BaseModel):
    organizations: list[OrganizationPublic]
    next_cursor: str | None


class PrincipalList(BaseModel):
    principals: list[PrincipalPublic]
    next_cursor: str | None


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


@router.post("/v1/organizations", status_code=201, response_model=OrganizationPublic)
def create_organization(
    request: Request, session: SessionDep, access: ManageIdentity, data: OrganizationCreate
) -> OrganizationPublic:
    """Register a participant: a government body, an enterprise or a research organisation."""
    organization = service.create_organization(session, data)
    record_allowed(
        session,
        request,
        access,
        action="organization.create",
        details={"organization": data.slug, "kind": data.kind.value},
    )
    return OrganizationPublic.model_validate(organization, from_attributes=True)


@router.get("/v1/organizations", response_model=OrganizationList)
def list_organizations(
    session: SessionDep,
    _access: ManageIdentity,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> OrganizationList:
    """All organisations, in registration order."""
    found = service.list_organizations(session, after=decode_cursor(cursor), limit=limit + 1)
    more, found = len(found) > limit, found[:limit]
    next_cursor = encode_cursor(found[-1].id or 0) if more else None
    return OrganizationList(
        organizations=[OrganizationPublic.model_validate(o, from_attributes=True) for o in found],
        next_cursor=next_cursor,
    )


@router.post("/v1/organizations/{org}/principals", status_code=201, response_model=PrincipalCreated)
def create_principal(
    request: Request, session: SessionDep, access: ManageIdentity, org: str, data: PrincipalCreate
) -> PrincipalCreated:
    """A person or service of the organisation, with roles. The client secret is
    in this response only; the exchange keeps a slow salted hash of it."""
    created = service.create_principal(session, org, data)
    record_allowed(
        session,
        request,
        access,
        action="principal.create",
        details={"organization": org, "client_id": created.client_id, "roles": created.roles},
    )
    return created


@router.get("/v1/organizations/{org}/principals", response_model=PrincipalList)
def list_principals(
    session: SessionDep,
    _access: ManageIdentity,
    org: str,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> PrincipalList:
    """The organisation's principals (never their secrets)."""
    found = service.list_principals(session, org, after=decode_cursor(cursor), limit=limit + 1)
    more, found = len(found) > limit, found[:limit]
    next_cursor = encode_cursor(found[-1][0]) if more else None
    return PrincipalList(principals=[p for _, p in found], next_cursor=next_cursor)


class InvalidClient(Unauthorized):
    code, title = "invalid_client", "Invalid client"


class UnsupportedGrant(ExchangeError):
    status, code, title = 400, "unsupported_grant_type", "Unsupported grant type"


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str, bool]:
    """Client id and secret from HTTP Basic (RFC 6749 §2.3.1) or the form body, and
    whether Basic was used. Raises InvalidClient for malformed Basic credentials."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise _invalid_client("malformed Basic credentials", basic=True) from None
        return client_id, secret, True
    return form.get("client_id", ""), form.get("client_secret", ""), False


def _invalid_client(detail: str, *, basic: bool) -> InvalidClient:
    error = InvalidClient(detail, error="invalid_client")
    if basic:  # RFC 6749 §5.2: challenge with the scheme the client used
        error.headers["WWW-Authenticate"] = 'Basic realm="exchange"'
    return error


async def _token_form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode("utf-8", "replace")))


def refused_token(
    session: Session, request: Request, claimed: str, error: ExchangeError
) -> ExchangeError:
    """Audit a refused token request and commit the entry on its own (whatever the
    request did so far is rolled back), since the request then fails; the error,
    for the caller to raise."""
    session.rollback()
    record(
        session,
        request,
        None,
        action="token.issue",
        allowed=False,
        reason=error.detail,
        details={"client_id": claimed[:64]} if claimed else {},
    )
    session.commit()
    return error


def issue_token(
    session: Session, request: Request, client_id: str, secret: str, *, basic: bool = False
) -> TokenResponse:
    """A token for the client whose secret this is, the attempt audited either way.
    Raises InvalidClient (its refusal already committed to the audit log)."""
    found = service.authenticate(session, client_id, secret) if client_id and secret else None
    if found is None:
        invalid = _invalid_client("unknown client or wrong secret", basic=basic)
        raise refused_token(session, request, client_id, invalid)
    record(
        session,
        request,
        Actor(found.client_id, found.organization),
        action="token.issue",
        allowed=True,
        reason="client authenticated",
    )
    access_token, expires_in = request.app.state.tokens.issue(found.client_id)
    return TokenResponse(access_token=access_token, expires_in=expires_in)


@router.post("/oauth/token", response_model=TokenResponse, tags=["tokens"])
def token(
    request: Request, session: SessionDep, form: Annotated[dict[str, str], Depends(_token_form)]
) -> Response:
    """OAuth 2.0 client credentials (form-encoded; the secret in the body or HTTP
    Basic) → a short-lived EdDSA-signed JWT. Every attempt is audited."""
    try:
        client_id, secret, basic = _credentials(request, form)
    except InvalidClient as malformed:
        raise refused_token(session, request, "", malformed) from None
    if form.get("grant_type") != "client_credentials":
        unsupported = UnsupportedGrant(
            "only grant_type=client_credentials is supported", error="unsupported_grant_type"
        )
        raise refused_token(session, request, client_id, unsupported)
    body = issue_token(session, request, client_id, secret, basic=basic)
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


@router.get("/.well-known/jwks.json", tags=["tokens"])
def jwks(request: Request) -> dict:
    """The public keys that verify this exchange's tokens."""
    return request.app.state.tokens.jwks()
