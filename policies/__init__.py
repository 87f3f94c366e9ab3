"""Access policy: the Casbin model, the policy lines, and the one decision.

Imports nothing from `exchange`; depends only on Casbin. See docs/policies.md.
"""

from policies.decision import Decision, PolicyError, Resource, Subject
from policies.engine import PolicyEngine, parse_policy

__all__ = ["Decision", "PolicyEngine", "PolicyError", "Resource", "Subject", "parse_policy"]
