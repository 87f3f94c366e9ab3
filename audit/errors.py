"""The audit package's errors (importable without a database library)."""


class AuditWriteError(Exception):
    """The entry could not be written; the action it records must not happen."""
