"""create_app(): settings, database, keys, policy, routers and error handlers."""

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy import select, text

from audit.store import AuditHead
from exchange import console
from exchange.aggregates.router import router as aggregates_router
from exchange.auditing.checkpoints import Signer, sign_if_grown
from exchange.auditing.router import router as audit_router
from exchange.auditing.subjects import SubjectIndex
from exchange.auditing.usage import router as usage_router
from exchange.catalog.router import router as catalog_router
from exchange.db import make_engine
from exchange.errors import ServiceUnavailable, install_handlers
from exchange.feeds.delivery import Deliverer
from exchange.feeds.doorbell import Doorbell, Listener
from exchange.feeds.metrics import router as metrics_router
from exchange.feeds.router import router as feeds_router
from exchange.feeds.secretbox import SecretBox
from exchange.grants.router import router as grants_router
from exchange.identity.router import router as identity_router
from exchange.images.router import router as images_router
from exchange.keyring.master import MasterKeys
from exchange.keyring.service import Keyring
from exchange.keys import load_or_create_key, load_or_create_secret
from exchange.linkage.router import router as linkage_router
from exchange.periodic import Periodic
from exchange.policy.decisions import router as decisions_router
from exchange.policy.live import LivePolicy
from exchange.policy.router import router as policy_router
from exchange.privacy.pseudonyms import PseudonymKeys
from exchange.records.reidentify import router as reidentify_router
from exchange.records.router import router as records_router
from exchange.retention.service import sweep_in
from exchange.settings import Settings
from exchange.sharing.router import router as sharing_router
from exchange.tokens import TokenService

log = logging.getLogger(__name__)


def _token_service(settings: Settings) -> TokenService:
    passphrase = settings.signing_key_passphrase
    key = load_or_create_key(
        settings.resolved_signing_key_path,
        passphrase.get_secret_value().encode() if passphrase else None,
    )
    return TokenService(
        key,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl_seconds=settings.token_ttl_seconds,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)

    signer = Signer.from_settings(settings)
    chores = [
        Periodic(name, interval, work)
        for name, interval, work in (
            (
                "audit-checkpoints",
                settings.checkpoint_interval_seconds,
                lambda: sign_if_grown(signer, engine),
            ),
            ("retention", settings.retention_interval_seconds, lambda: sweep_in(engine)),
        )
        if interval > 0
    ]

    policy = LivePolicy(engine, settings.policy_poll_seconds)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        policy.start()
        for chore in chores:
            chore.start()
        deliverer = (
            Deliverer(app.state, engine, settings, app.state.doorbell, settings.delivery_workers)
            if settings.delivery_workers
            else None
        )
        listener = Listener(engine, app.state.doorbell)
        listener.start()
        if deliverer:
            deliverer.start()
        yield
        if deliverer:
            deliverer.stop()
        listener.stop()
        for chore in chores:
            chore.stop()
        policy.stop()
        engine.dispose()

    app = FastAPI(
        title="The exchange",
        version="0.1.0",
        description="Brokered data sharing between government and enterprises, "
        "decided by policy, shaped by views, and written to a tamper-evident audit log.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.tokens = _token_service(settings)
    app.state.policy = policy
    app.state.signer = signer
    app.state.subjects = SubjectIndex(load_or_create_secret(settings.resolved_subject_key_path))
    app.state.keyring = Keyring(MasterKeys(settings.resolved_master_key_dir))
    app.state.pseudonyms = PseudonymKeys(
        load_or_create_secret(settings.resolved_pseudonym_key_path)
    )
    app.state.webhook_secrets = SecretBox(load_or_create_secret(settings.resolved_webhook_key_path))
    app.state.doorbell = Doorbell()
    app.state.console_key = load_or_create_secret(settings.resolved_console_key_path)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("x-request-id", "")
        request.state.request_id = given if 0 < len(given) <= 64 else uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        return response

    install_handlers(app, pages=("/console", console.error_page))
    app.include_router(identity_router)
    app.include_router(catalog_router)
    app.include_router(records_router)
    app.include_router(images_router)
    app.include_router(reidentify_router)
    app.include_router(aggregates_router)
    app.include_router(audit_router)
    app.include_router(usage_router)
    app.include_router(policy_router)
    app.include_router(decisions_router)
    app.include_router(grants_router)
    app.include_router(feeds_router)
    app.include_router(metrics_router)
    app.include_router(linkage_router)
    app.include_router(sharing_router)
    console.mount(app)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> dict[str, str]:
        """Readiness: the database answers and the audit log's head can be locked for writing."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                head = connection.execute(select(AuditHead.size).with_for_update()).scalar()
                connection.rollback()
        except Exception as error:
            raise ServiceUnavailable(f"database not ready: {type(error).__name__}") from error
        if head is None:
            raise ServiceUnavailable("the audit log is not initialised; run `exchange db upgrade`")
        return {"status": "ready", "policy_version": policy.current.version}

    return app
