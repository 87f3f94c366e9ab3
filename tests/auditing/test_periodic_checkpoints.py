"""The server signs checkpoints by itself, at its interval, whenever the log grew."""

import time

from fastapi.testclient import TestClient
from sqlmodel import Session

from audit import Verifier, open_note, store
from exchange.main import create_app
from exchange.settings import Settings


def test_a_checkpoint_is_signed_without_being_asked(settings: Settings) -> None:
    settings = settings.model_copy(update={"checkpoint_interval_seconds": 0.2})
    with TestClient(create_app(settings)) as client:
        # Activity the log records: a refused token request.
        client.post("/oauth/token", data={"grant_type": "client_credentials"})
        verifier = Verifier.parse(client.get("/v1/audit/public-key").text)
        engine = client.app.state.engine
        deadline = time.monotonic() + 20
        latest = None
        while time.monotonic() < deadline and latest is None:
            time.sleep(0.1)
            with Session(engine) as session:
                latest = store.latest_checkpoint(session)
        assert latest is not None, "no checkpoint was signed"
        signed = open_note(latest.note, verifier)
        assert signed.size >= 1
