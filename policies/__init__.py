"""Access policy: the Casbin model, the policy lines, and the one decision.

Imports nothing from `exchange`; depends only on Casbin. See docs/policies.md.
"""

from policies.decision import Decision, PolicyError, Resource, Subject
from policies.engine import PolicyEngine
from policies.lines import PolicyLine, format_line, parse_lines, parse_policy

__all__ = [
    "Decision",
    "PolicyEngine",
    "PolicyError",
    "PolicyLine",
    "Resource",
    "Subject",
    "format_line",
    "parse_lines",
    "parse_policy",
]
