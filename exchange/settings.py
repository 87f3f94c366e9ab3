"""Every knob of the exchange, read from `EXCHANGE_*` environment variables.

Defaults make a new user's first run work with no set-up: a SQLite file and keys
under `./var`. Production sets `EXCHANGE_DATABASE_URL` to PostgreSQL.
"""

from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", "example", "xxx"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore")

    data_dir: Path = Path("./var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file under data_dir."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    token_issuer: str = "exchange"
    token_audience: str = "exchange-api"
    signing_key_path: Path | None = Field(
        default=None,
        description="Ed25519 token key (PEM); default: data_dir/keys/token-signing.pem.",
    )
    signing_key_passphrase: SecretStr | None = Field(
        default=None, description="Encrypts the token key at rest when set."
    )

    audit_origin: str = Field(
        default="exchange.local/audit",
        pattern=r"^[A-Za-z0-9.\-/:]+$",
        description="The log's name in its signed checkpoints (and its verifier key).",
    )
    checkpoint_key_path: Path | None = Field(
        default=None,
        description="Ed25519 checkpoint key; default: data_dir/keys/audit-checkpoint.pem.",
    )
    master_key_dir: Path | None = Field(
        default=None,
        description="Master keys for encryption at rest; default: data_dir/keys/master.",
    )
    retention_interval_seconds: float = Field(
        default=3600,
        ge=0,
        description="Remove records past their product's retention this often; 0: only by "
        "`exchange retention run`.",
    )
    checkpoint_interval_seconds: float = Field(
        default=60,
        ge=0,
        description="Sign a checkpoint this often if the log grew; 0: only on demand.",
    )

    access_request_due_working_days: int = Field(
        default=5, ge=1, le=60, description="A steward's reply is due this many working days on."
    )
    working_days_zone: str = Field(
        default="Asia/Shanghai",
        description="The time zone whose Monday to Friday count as working days for due dates.",
    )
    policy_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="How often a worker checks for a new policy version (PostgreSQL also "
        "hears NOTIFY at once).",
    )
    aggregate_min_group: int = Field(
        default=10, ge=2, description="Groups whose noisy count is below this are not published."
    )
    aggregate_delta: float = Field(
        default=1e-6,
        gt=0,
        lt=0.01,
        description="Chance a group of one subject is published anyway (the δ of (ε, δ)-DP).",
    )
    aggregate_contribution_cap: int = Field(
        default=5, ge=1, le=100, description="Records one subject may count for in a query."
    )
    privacy_budget_epsilon: float = Field(
        default=10.0, gt=0, description="Epsilon each organisation may spend per product per month."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks go to http:// URLs and to loopback and private addresses. "
        "For development and tests only: in production it opens the exchange's own network "
        "to anyone who can make a subscription.",
    )
    delivery_workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Webhook delivery threads in each server; 0: none (run `exchange worker`).",
    )
    delivery_poll_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often an idle delivery worker looks for work."
    )
    delivery_timeout_seconds: float = Field(
        default=10, gt=0, le=120, description="How long a receiver has to answer a webhook."
    )
    delivery_max_attempts: int = Field(
        default=15,
        ge=1,
        le=100,
        description="Attempts at one batch before its events go to the dead-letter list; with "
        "the default backoff, 15 attempts span more than an hour.",
    )
    delivery_retry_base_seconds: float = Field(
        default=1.0, gt=0, description="The first retry's delay; each next one doubles."
    )
    delivery_retry_max_seconds: float = Field(
        default=600, gt=0, description="The longest delay between two attempts."
    )
    delivery_batch_max: int = Field(
        default=100, ge=1, le=1000, description="The most events one webhook request carries."
    )
    pull_wait_max_seconds: float = Field(
        default=30, ge=0, le=300, description="The longest a pull may wait for new events."
    )
    max_batch_records: int = Field(default=50_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_image_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="The largest image a record may have."
    )
    page_limit_max: int = Field(default=1000, ge=1)

    @field_validator("signing_key_passphrase")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDER_SECRETS:
            raise ValueError("a placeholder passphrase protects nothing; set a real one")
        return value

    @field_validator("working_days_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Shanghai") from None
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'exchange.db').resolve()}"

    @cached_property
    def resolved_subject_key_path(self) -> Path:
        return self.data_dir / "keys" / "subject-index.key"

    @cached_property
    def resolved_pseudonym_key_path(self) -> Path:
        """The master secret every consumer's pseudonym key is derived from."""
        return self.data_dir / "keys" / "pseudonym-master.key"

    @cached_property
    def resolved_webhook_key_path(self) -> Path:
        """The key webhook secrets are sealed under."""
        return self.data_dir / "keys" / "webhook-secrets.key"

    @cached_property
    def resolved_console_key_path(self) -> Path:
        """The key the web console's CSRF tokens are derived under."""
        return self.data_dir / "keys" / "console-csrf.key"

    @property
    def delivery_lease_seconds(self) -> float:
        """How long a worker holds a subscription it delivers for: long enough to
        prepare and send one batch; a worker that dies lets go when it runs out."""
        return 2 * self.delivery_timeout_seconds + 5

    @cached_property
    def resolved_master_key_dir(self) -> Path:
        """The master keys that wrap each product's data key (`exchange keys rotate`)."""
        return self.master_key_dir or self.data_dir / "keys" / "master"

    @cached_property
    def resolved_checkpoint_key_path(self) -> Path:
        return self.checkpoint_key_path or self.data_dir / "keys" / "audit-checkpoint.pem"

    @cached_property
    def resolved_signing_key_path(self) -> Path:
        return self.signing_key_path or self.data_dir / "keys" / "token-signing.pem"
