"""The console's sections, their tabs, and which of them the policy opens to whom.

A section's tab is shown to whoever the policy lets do its action on its part of
the exchange (asked without logging, to draw the page); the tab's route makes the
same decision itself, and a refusal there is logged as the API's would be.
"""

from dataclasses import dataclass, replace

from fastapi import Request, Response
from sqlalchemy.orm import Session

from exchange.auth import Caller, decide, engine
from exchange.console.pages import redirect
from policies import Resource


@dataclass(frozen=True)
class Tab:
    """A page of a section, shown to whoever the policy lets do `action` on
    `system:<part>` (its route makes the same decision, logged)."""

    path: str
    english: str
    chinese: str
    part: str
    action: str


@dataclass(frozen=True)
class Section:
    """A part of the console: in the navigation for whoever may open one of its
    tabs (the catalog, with none, for everyone)."""

    path: str
    english: str
    chinese: str
    tabs: tuple[Tab, ...] = ()

    def tab_at(self, path: str) -> Tab | None:
        """The tab a path belongs to: the longest tab path it starts with."""
        found = [tab for tab in self.tabs if path == tab.path or path.startswith(tab.path + "/")]
        return max(found, key=lambda tab: len(tab.path), default=None)


SECTIONS = (
    Section("/console/catalog", "Catalog", "目录"),
    Section(
        "/console/steward",
        "Steward",
        "数据管理",
        (
            Tab("/console/steward/requests", "Access requests", "访问申请", "grants", "manage"),
            Tab("/console/steward/grants", "Grants", "授权", "grants", "manage"),
            Tab("/console/steward/policy", "Policy", "策略", "policy", "manage"),
            Tab("/console/steward/policy/versions", "Versions", "版本", "policy", "manage"),
        ),
    ),
    Section(
        "/console/audit",
        "Audit",
        "审计",
        (
            Tab("/console/audit/entries", "Entries", "审计记录", "audit", "read"),
            Tab("/console/audit/checkpoint", "Checkpoint", "检查点", "audit", "read"),
            Tab("/console/audit/subjects", "Subject report", "数据主体报告", "audit", "read"),
            Tab("/console/audit/charts", "Charts", "图表", "audit", "read"),
        ),
    ),
    Section(
        "/console/publisher",
        "Publisher",
        "发布方",
        (
            Tab(
                "/console/publisher/products", "My products", "我的数据产品", "catalog", "register"
            ),
            Tab("/console/publisher/usage", "Usage", "使用情况", "usage", "read"),
            Tab("/console/publisher/images", "Images", "图像", "catalog", "register"),
        ),
    ),
    Section(
        "/console/subscriber",
        "Subscriber",
        "订阅方",
        (
            Tab(
                "/console/subscriber/subscriptions",
                "My subscriptions",
                "我的订阅",
                "feeds",
                "manage",
            ),
            Tab(
                "/console/subscriber/requests",
                "Requests and grants",
                "申请与授权",
                "grants",
                "read",
            ),
        ),
    ),
)


def open_to(request: Request, caller: Caller) -> tuple[Section, ...]:
    """Each section as the caller may see it (asked of the policy, not logged)."""
    policy = engine(request)
    allowed = {
        (tab.part, tab.action): policy.decide(
            caller.subject, Resource.system(tab.part), tab.action
        ).allowed
        for section in SECTIONS
        for tab in section.tabs
    }
    shown = [
        replace(section, tabs=tuple(t for t in section.tabs if allowed[t.part, t.action]))
        for section in SECTIONS
    ]
    return tuple(
        section
        for section, every in zip(shown, SECTIONS, strict=True)
        if section.tabs or not every.tabs
    )


def section_entry(request: Request, session: Session, caller: Caller, path: str) -> Response:
    """A section's landing: its first tab the viewer may open; if none, the first
    tab's decision is made, logged and refused."""
    (section,) = [section for section in SECTIONS if section.path == path]
    shown = request.state.viewer.section_at(path)
    if shown is not None and shown.tabs:
        return redirect(shown.tabs[0].path)
    first = section.tabs[0]
    decide(session, request, caller, Resource.system(first.part), first.action)
    raise AssertionError("decide allows what the engine refused")  # pragma: no cover
