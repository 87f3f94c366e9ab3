"""Signing checkpoints of the audit log: on demand, and at a fixed interval."""

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audit import Checkpoint, sign, verifier_key
from audit import store as log
from exchange.keys import load_or_create_key
from exchange.settings import Settings
from exchange.timeutil import to_rfc3339


@dataclass(frozen=True)
class Signer:
    origin: str
    key: Ed25519PrivateKey

    @classmethod
    def from_settings(cls, settings: Settings) -> "Signer":
        return cls(
            settings.audit_origin, load_or_create_key(settings.resolved_checkpoint_key_path, None)
        )

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.origin, self.key.public_key())

    def checkpoint(self, session: Session) -> log.AuditCheckpoint:
        """Sign the tree as it is now and keep the checkpoint (caller commits).

        The time line keeps checkpoints of the same size apart and tells an
        auditor how fresh the view is.
        """
        now = log.head(session)
        extra = (f"time {to_rfc3339(datetime.now(UTC))}",)
        note = sign(Checkpoint(self.origin, now.size, now.root, extra), self.origin, self.key)
        return log.keep_checkpoint(session, now.size, now.root, note)

    def latest(self, session: Session) -> log.AuditCheckpoint:
        """The latest checkpoint; one is signed if there is none yet."""
        return log.latest_checkpoint(session) or self.checkpoint(session)


def sign_if_grown(signer: Signer, engine: Engine) -> None:
    """Sign a checkpoint if the log grew since the last one (the server does this
    every EXCHANGE_CHECKPOINT_INTERVAL_SECONDS). Several workers may each sign;
    checkpoints are cheap and all consistent with each other."""
    with Session(engine) as session:
        latest = log.latest_checkpoint(session)
        if log.head(session).size > (latest.size if latest else 0):
            signer.checkpoint(session)
            session.commit()
