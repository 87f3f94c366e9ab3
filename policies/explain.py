"""Why a request was denied, in words a caller can act on."""

from policies.decision import Resource, Subject


def denial_reason(
    subject: Subject,
    resource: Resource,
    action: str,
    purpose: str,
    rule: tuple[str, ...] | None,
) -> tuple[str, str | None]:
    """The reason for a denial and, where one exists, what to do about it."""
    if rule and rule[-1] == "deny":
        return "denied by rule [" + ", ".join(rule) + "]", None
    if resource.is_product and action == "read":
        if purpose not in resource.purposes:
            declared = ", ".join(sorted(resource.purposes)) or "none"
            return (
                f"purpose {purpose!r} is not declared for {resource.name} (declared: {declared})",
                "state one of the product's declared purposes",
            )
        if resource.tier == "regulated" and subject.kind != "government":
            return (
                f"{resource.name} is regulated: {subject.kind} organisations need an approved "
                "grant for the purpose",
                f"request access for purpose {purpose} (POST /v1/access-requests)",
            )
        if resource.tier == "government_only" and subject.kind != "government":
            return f"{resource.name} is for government organisations only", None
        if "subscriber" not in subject.roles:
            return "reading data products needs the subscriber role", None
    roles = "+".join(sorted(subject.roles)) or "no role"
    target = f"{resource.tier} product {resource.name}" if resource.is_product else resource.name
    for_purpose = f" for purpose {purpose!r}" if purpose else ""
    return f"no rule lets {subject.kind} {roles} {action} {target}{for_purpose}", None
