"""The exchange's side of the audit log: what each request writes, and the auditor's routes."""
