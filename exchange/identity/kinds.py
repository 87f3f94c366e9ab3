"""The kinds of participant and the roles of principals: plain enums, importable
without the database layer (the command line declares its options with them)."""

from enum import StrEnum


class OrgKind(StrEnum):
    government = "government"
    enterprise = "enterprise"
    research = "research"


class Role(StrEnum):
    publisher = "publisher"
    subscriber = "subscriber"
    steward = "steward"
    auditor = "auditor"
    admin = "admin"
