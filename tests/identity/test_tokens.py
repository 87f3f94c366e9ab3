"""POST /oauth/token and the bearer tokens it issues, as a protected route verifies them.

Forged tokens are built by hand (or signed with the exchange's own key, read from its
PEM file) so that each one is wrong in exactly one way; a control case signs a correct
token the same way and must be accepted, so every refusal is for the stated reason.
"""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from exchange.main import create_app
from exchange.settings import Settings
from tests.conftest import Exchange, Party, run_cli

PROTECTED = "/v1/products"
PROBLEM_JSON = "application/problem+json"
ABSENT = object()  # a claim to leave out


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode())


def cli_party(settings: Settings, key: str, org: str, role: str) -> Party:
    run_cli(settings, "org", "create", "--slug", org, "--name", org, "--kind", "government")
    made = json.loads(
        run_cli(settings, "principal", "create", "--org", org, "--name", key, "--role", role)
    )
    return Party(key, made["client_id"], made["client_secret"], org, "government", [role])


@pytest.fixture
def world(client: TestClient, settings: Settings) -> Exchange:
    """A lean exchange: a publisher and an auditor, made with the CLI."""
    exchange = Exchange(client, settings)
    exchange.parties["fleet"] = cli_party(settings, "fleet", "pearl-robotaxi", "publisher")
    exchange.parties["auditor"] = cli_party(settings, "auditor", "gz-audit-office", "auditor")
    return exchange


def token_request(client: TestClient, party: Party) -> Any:
    form = {
        "grant_type": "client_credentials",
        "client_id": party.client_id,
        "client_secret": party.client_secret,
    }
    return client.post("/oauth/token", data=form)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class Forge:
    """What a forger (or a test) needs: the exchange's public and private key, its kid."""

    world: Exchange
    key: Ed25519PrivateKey
    kid: str
    x: str

    @property
    def settings(self) -> Settings:
        return self.world.settings

    def claims(self, sub: str | None = None, **changes: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self.settings.token_issuer,
            "aud": self.settings.token_audience,
            "sub": sub or self.world.parties["fleet"].client_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=10)).timestamp()),
            "jti": uuid.uuid4().hex,
        } | changes
        return {name: value for name, value in claims.items() if value is not ABSENT}

    def sign(
        self,
        claims: dict[str, Any] | None = None,
        key: Ed25519PrivateKey | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        return jwt.encode(
            claims or self.claims(),
            key or self.key,
            algorithm="EdDSA",
            headers={"kid": self.kid} if headers is None else headers,
        )

    def real_token(self, who: str = "fleet") -> str:
        return self.world.token(self.world.parties[who])


@pytest.fixture
def forge(world: Exchange) -> Forge:
    (jwk,) = world.client.get("/.well-known/jwks.json").json()["keys"]
    pem = Path(world.settings.resolved_signing_key_path).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return Forge(world, key, jwk["kid"], jwk["x"])


def alg_none(forge: Forge, alg: str) -> str:
    header = segment({"alg": alg, "typ": "JWT", "kid": forge.kid})
    return f"{header}.{segment(forge.claims())}."


def hs256_with_public_key(forge: Forge, secret: bytes) -> str:
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': forge.kid})}."
    signing_input += segment(forge.claims())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def tampered_sub(forge: Forge) -> str:
    header, payload, signature = forge.real_token().split(".")
    claims = json.loads(unb64url(payload))
    claims["sub"] = forge.world.parties["auditor"].client_id
    return f"{header}.{segment(claims)}.{signature}"


def hours(n: int) -> int:
    return int((datetime.now(UTC) + timedelta(hours=n)).timestamp())


Bearer = Callable[[Forge], str]

FORGED: dict[str, Bearer] = {
    "alg none": lambda f: alg_none(f, "none"),
    "alg None": lambda f: alg_none(f, "None"),
    "alg NONE": lambda f: alg_none(f, "NONE"),
    "hs256 keyed with raw public key": lambda f: hs256_with_public_key(f, unb64url(f.x)),
    "hs256 keyed with jwk x": lambda f: hs256_with_public_key(f, f.x.encode()),
    "expired": lambda f: f.sign(f.claims(iat=hours(-2), nbf=hours(-2), exp=hours(-1))),
    "not yet valid": lambda f: f.sign(f.claims(nbf=hours(1), exp=hours(2))),
    "wrong audience": lambda f: f.sign(f.claims(aud="another-api")),
    "wrong issuer": lambda f: f.sign(f.claims(iss="another-exchange")),
    "tampered sub": tampered_sub,
    "foreign key, our kid": lambda f: f.sign(key=Ed25519PrivateKey.generate()),
    "our key, other kid": lambda f: f.sign(headers={"kid": "another-key"}),
    "our key, no kid": lambda f: f.sign(headers={}),
    **{
        f"no {claim}": (lambda f, claim=claim: f.sign(f.claims(**{claim: ABSENT})))
        for claim in ["jti", "sub", "exp", "iat", "nbf", "iss", "aud"]
    },
    "sub not a string": lambda f: f.sign(f.claims(sub=12345)),
    "unknown principal": lambda f: f.sign(f.claims(sub="cl_nobody")),
    "signature stripped": lambda f: f.real_token().rsplit(".", 1)[0] + ".",
    "garbage": lambda f: "not-a-token",
    "garbage in three parts": lambda f: "aaa.bbb.ccc",
}


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401
    assert body["type"] == "urn:exchange:problem:unauthorized"
    assert body["detail"]


@pytest.mark.parametrize("make", FORGED.values(), ids=FORGED.keys())
def test_forged_or_broken_bearer_token_is_refused(forge: Forge, make: Bearer) -> None:
    token = make(forge)
    response = forge.world.client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert_unauthorized(response)


AUTHORIZATION: dict[str, Callable[[Forge], dict[str, str]]] = {
    "no header": lambda f: {},
    "empty header": lambda f: {"Authorization": ""},
    "bearer without token": lambda f: {"Authorization": "Bearer "},
    "basic scheme with real credentials": lambda f: {
        "Authorization": basic(f.world.parties["fleet"].client_id, f.real_token())
    },
    "token scheme with a real token": lambda f: {"Authorization": f"Token {f.real_token()}"},
    "real token without a scheme": lambda f: {"Authorization": f.real_token()},
}


@pytest.mark.parametrize("make", AUTHORIZATION.values(), ids=AUTHORIZATION.keys())
def test_missing_or_non_bearer_authorization_is_refused(
    forge: Forge, make: Callable[[Forge], dict[str, str]]
) -> None:
    assert_unauthorized(forge.world.client.get(PROTECTED, headers=make(forge)))


def test_controls_a_real_and_a_correctly_self_signed_token_are_accepted(forge: Forge) -> None:
    for token in [forge.real_token(), forge.sign()]:
        response = forge.world.client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
    lowercase = {"Authorization": f"bearer {forge.real_token()}"}
    assert forge.world.client.get(PROTECTED, headers=lowercase).status_code == 200


def test_issued_token_is_an_eddsa_jwt_with_every_claim(world: Exchange) -> None:
    fleet = world.parties["fleet"]
    response = token_request(world.client, fleet)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == world.settings.token_ttl_seconds

    (jwk,) = world.client.get("/.well-known/jwks.json").json()["keys"]
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == jwk["kid"]
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["EdDSA"],
        audience=world.settings.token_audience,
        issuer=world.settings.token_issuer,
    )
    assert {"iss", "aud", "sub", "exp", "iat", "nbf", "jti"} <= claims.keys()
    assert claims["sub"] == fleet.client_id
    assert claims["iss"] == world.settings.token_issuer
    assert claims["aud"] == world.settings.token_audience
    assert claims["exp"] - claims["iat"] == world.settings.token_ttl_seconds

    again = token_request(world.client, fleet).json()["access_token"]
    assert jwt.decode(again, options={"verify_signature": False})["jti"] != claims["jti"]
    for issued in [token, again]:
        used = world.client.get(PROTECTED, headers={"Authorization": f"Bearer {issued}"})
        assert used.status_code == 200, used.text


def test_jwks_publishes_only_the_public_ed25519_key(forge: Forge) -> None:
    response = forge.world.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (jwk,) = response.json()["keys"]
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert jwk["alg"] == "EdDSA"
    assert "d" not in jwk
    raw = forge.key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert unb64url(jwk["x"]) == raw
    thumbprint = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}, separators=(",", ":"), sort_keys=True
    )
    assert jwk["kid"] == b64url(hashlib.sha256(thumbprint.encode()).digest())  # RFC 7638


@pytest.fixture
def short_ttl_client(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(database_url=database_url, data_dir=tmp_path / "ttl", token_ttl_seconds=45)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, settings


def test_expires_in_follows_the_configured_ttl(
    short_ttl_client: tuple[TestClient, Settings],
) -> None:
    client, settings = short_ttl_client
    party = cli_party(settings, "fleet", "pearl-robotaxi", "publisher")
    response = token_request(client, party)
    assert response.status_code == 200, response.text
    assert response.json()["expires_in"] == 45
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 45


def test_http_basic_credentials_get_a_token(world: Exchange) -> None:
    fleet = world.parties["fleet"]
    response = world.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(fleet.client_id, fleet.client_secret)},
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token = response.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == fleet.client_id
    used = world.client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert used.status_code == 200, used.text


GRANT = "client_credentials"


@dataclass(frozen=True)
class Failure:
    """A failed token request, made from the publisher's real credentials, and its outcome."""

    request: Callable[[Party], dict[str, Any]]  # keyword arguments for client.post
    status: int
    error: str
    logged_client_id: Callable[[Party], str] | None = None  # in the audit entry, if known
    challenge: str | None = None  # RFC 6749 §5.2: 401 after HTTP Basic answers a Basic challenge


def form(**fields: str) -> dict[str, Any]:
    return {"data": fields}


FAILURES: dict[str, Failure] = {
    "wrong secret": Failure(
        lambda p: form(grant_type=GRANT, client_id=p.client_id, client_secret="cs_wrong"),
        401,
        "invalid_client",
        lambda p: p.client_id,
    ),
    "unknown client id": Failure(
        lambda p: form(grant_type=GRANT, client_id="cl_nobody", client_secret=p.client_secret),
        401,
        "invalid_client",
        lambda p: "cl_nobody",
    ),
    "no secret": Failure(
        lambda p: form(grant_type=GRANT, client_id=p.client_id),
        401,
        "invalid_client",
        lambda p: p.client_id,
    ),
    "no credentials": Failure(lambda p: form(grant_type=GRANT), 401, "invalid_client"),
    "client id with a NUL byte": Failure(
        lambda p: form(grant_type=GRANT, client_id="cl_a\x00b", client_secret=p.client_secret),
        401,
        "invalid_client",
        lambda p: "cl_a\x00b",
    ),
    "basic with wrong secret": Failure(
        lambda p: (
            form(grant_type=GRANT) | {"headers": {"Authorization": basic(p.client_id, "cs_wrong")}}
        ),
        401,
        "invalid_client",
        lambda p: p.client_id,
        challenge="Basic",
    ),
    "malformed basic": Failure(
        lambda p: form(grant_type=GRANT) | {"headers": {"Authorization": "Basic abc"}},
        401,
        "invalid_client",
        challenge="Basic",
    ),
    "wrong grant type": Failure(
        lambda p: form(grant_type="password", client_id=p.client_id, client_secret="cs_wrong"),
        400,
        "unsupported_grant_type",
    ),
    "no grant type": Failure(
        lambda p: form(client_id=p.client_id, client_secret="cs_wrong"),
        400,
        "unsupported_grant_type",
    ),
}


def send(world: Exchange, failure: Failure) -> Any:
    return world.client.post("/oauth/token", **failure.request(world.parties["fleet"]))


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
def test_failed_token_request_is_a_problem(world: Exchange, failure: Failure) -> None:
    response = send(world, failure)
    assert response.status_code == failure.status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "access_token" not in response.text
    body = response.json()
    assert body["status"] == failure.status
    assert body["error"] == failure.error
    assert body["type"] == f"urn:exchange:problem:{failure.error}"
    if failure.challenge is not None:
        assert response.headers["www-authenticate"].split()[0] == failure.challenge


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
def test_failed_token_request_is_audited_as_a_denial(world: Exchange, failure: Failure) -> None:
    query = {"action": "token.issue", "decision": "deny"}
    before = world.get("auditor", "/v1/audit/entries", params=query)
    assert before.status_code == 200, before.text
    assert before.json()["entries"] == []

    send(world, failure)

    after = world.get("auditor", "/v1/audit/entries", params=query)
    assert after.status_code == 200, after.text
    entries = [e["entry"] for e in after.json()["entries"]]
    assert len(entries) == 1, entries
    (entry,) = entries
    assert entry["decision"] == "deny"
    assert entry["actor"] is None
    assert world.parties["fleet"].client_secret not in json.dumps(entry)
    if failure.logged_client_id is not None:
        expected = failure.logged_client_id(world.parties["fleet"])
        assert entry["details"]["client_id"] == expected
