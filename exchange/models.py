"""Every table, imported in one place so metadata and migrations see them all."""

from audit.store import AuditEntry, AuditHead
from exchange.aggregates.models import PrivacyBudget
from exchange.catalog.models import Product, ProductVersion
from exchange.feeds.models import DeliveryAttempt, FeedEvent, Subscription
from exchange.grants.models import AccessRequest, Grant
from exchange.identity.models import Organization, Principal
from exchange.images.models import RecordImage
from exchange.keyring.models import DataKeyRow, KeyHead
from exchange.policy.models import PolicyHead, PolicyRule, PolicyTest, PolicyVersion
from exchange.records.models import Record

__all__ = [
    "AccessRequest",
    "AuditEntry",
    "AuditHead",
    "DataKeyRow",
    "DeliveryAttempt",
    "FeedEvent",
    "Grant",
    "KeyHead",
    "Organization",
    "PolicyHead",
    "PolicyRule",
    "PolicyTest",
    "PolicyVersion",
    "Principal",
    "PrivacyBudget",
    "Product",
    "ProductVersion",
    "Record",
    "RecordImage",
    "Subscription",
]
