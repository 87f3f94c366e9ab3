"""Every table, imported in one place so metadata and migrations see them all."""

from audit.store import AuditEntry, AuditHead
from exchange.catalog.models import Product, ProductVersion
from exchange.identity.models import Organization, Principal
from exchange.records.models import Record

__all__ = [
    "AuditEntry",
    "AuditHead",
    "Organization",
    "Principal",
    "Product",
    "ProductVersion",
    "Record",
]
