"""The auditor's console pages over HTTP: the explorer and its export, the checkpoint
and verification, the subject report and the charts — each the audit API's own
answer, each view audited, and every page refused (and the refusal logged) for
anyone the policy does not let read the log."""

import html
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from audit import Verifier, open_note
from audit.export import ExportReport, verify_export
from tests.conftest import BASE_URL, Exchange
from tests.console.conftest import Browser, text_of
from tests.products import capture, captures_product

POSTGRES = BASE_URL.startswith("postgresql")
CAPTURES = "violation-captures"
READS = f"/v1/products/{CAPTURES}/records"
PLATE = "粤A·77777"
SVG = "{http://www.w3.org/2000/svg}"
ENTRY_ROW = re.compile(r'<tr id="entry-(\d+)"')
BLANK_FILTERS = {
    "actor": "",
    "organization": "",
    "product": "",
    "purpose": "",
    "action": "",
    "decision": "",
    "grant": "",
    "from": "",
    "to": "",
}


def _day(exchange: Exchange) -> dict[str, int]:
    """Captures with one plate twice; reads allowed and denied. What was read, counted
    by hand: organisation → accesses, and decision → accesses."""
    exchange.register("fleet", captures_product(subject_field="plate"))
    records = [capture(n) for n in range(1, 7)]
    records[1]["plate"] = PLATE  # cap-000002
    records[4]["plate"] = PLATE  # cap-000005
    assert exchange.publish("fleet", CAPTURES, records).status_code == 200
    calls = [
        ("police", READS, {"purpose": "law_enforcement", "limit": 3}, 200),
        ("police", f"{READS}/cap-000005", {"purpose": "law_enforcement"}, 200),
        ("police", READS, {"purpose": "traffic_management"}, 200),
        ("mapco", READS, {"purpose": "commercial"}, 403),
        ("mapco", READS, {"purpose": "navigation_safety"}, 200),
        ("lab", READS, {"purpose": "law_enforcement"}, 403),
    ]
    for who, path, params, status in calls:
        response = exchange.get(who, path, params=params)
        assert response.status_code == status, response.text
    return {
        "gz-traffic-police": 3,
        "lingnan-maps": 2,
        "scut-mobility-lab": 1,
        "allow": 4,
        "deny": 2,
    }


def _log(exchange: Exchange, **params: Any) -> list[dict[str, Any]]:
    response = exchange.get("auditor", "/v1/audit/entries", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return response.json()["entries"]


def _rows(page: str) -> list[int]:
    return [int(index) for index in ENTRY_ROW.findall(page)]


def _explore(auditor: Browser, **filters: Any) -> Any:
    """The filter form submitted as a browser submits it: every field, blanks too."""
    response = auditor.get("/console/audit/entries", params=BLANK_FILTERS | filters)
    assert response.status_code == 200, text_of(response.text)[:500]
    return response


def _next_link(page: str) -> str | None:
    found = re.search(r'id="next-page" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _body_of(page: str, table_id: str) -> str:
    """The words of a table's body."""
    found = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert found, table_id
    return text_of(found.group(1))


def _problem(response: Any, status: int, field: str) -> str:
    assert response.status_code == status, text_of(response.text)[:500]
    words = text_of(response.text)
    assert field in re.findall(r"<td><code>([^<]*)</code></td>", response.text), words
    return words


# --- the explorer -------------------------------------------------------------------


def test_filtering_by_product_and_denied_shows_the_denial_and_not_the_reads(
    exchange: Exchange, browser: Any
) -> None:
    _day(exchange)
    auditor = browser("auditor")
    page = _explore(auditor, product=CAPTURES, decision="deny")
    denials = [e["index"] for e in _log(exchange, product=CAPTURES, decision="deny")]
    assert len(denials) == 2
    assert _rows(page.text) == denials
    allowed = [e["index"] for e in _log(exchange, product=CAPTURES, decision="allow")]
    assert allowed and not set(allowed) & set(_rows(page.text))
    shown = _body_of(page.text, "audit-entries")
    assert "lingnan-maps" in shown and "scut-mobility-lab" in shown
    assert "gz-traffic-police" not in shown
    assert "commercial" in shown  # the purpose, and the reason the policy gave
    assert "denied" in shown and "allowed" not in shown
    # the form keeps what was asked
    assert f'name="product" value="{CAPTURES}"' in page.text
    assert '<option value="deny" selected>' in page.text


def _headings(page: str, table_id: str) -> list[str]:
    found = re.search(rf'<table id="{table_id}">.*?<thead>(.*?)</thead>', page, re.S)
    assert found, table_id
    return [text_of(cell).split(" ")[0] for cell in re.findall(r"<th>(.*?)</th>", found.group(1))]


def test_the_explorer_and_the_subject_report_share_one_entry_table(
    exchange: Exchange, browser: Any
) -> None:
    """The columns that differ: the explorer names the product and the decision, the
    report (reads of one product, all allowed) the request instead; both in both
    languages, and every row as wide as its heading."""
    _day(exchange)
    auditor = browser("auditor")
    explorer = _explore(auditor, product=CAPTURES)
    report = auditor.submit("/console/audit/subjects", {"product": CAPTURES, "subject": PLATE})
    common = ["#", "Time", "Actor", "Organisation", "Action"]
    rest = ["View", "Records", "Grant"]
    assert _headings(explorer.text, "audit-entries") == [
        *common,
        "Product",
        "Purpose",
        "Decision",
        *rest,
    ]
    assert _headings(report.text, "subject-report") == [*common, "Purpose", *rest, "Request"]
    for page, table_id, width in ((explorer, "audit-entries", 11), (report, "subject-report", 10)):
        body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', page.text, re.S)
        assert body, table_id
        rows = re.findall(r'<tr id="entry-\d+" class="entry">(.*?)</tr>', body.group(1), re.S)
        assert rows and all(row.count("<td>") == width for row in rows), table_id
    nothing = _explore(auditor, product="no-such-product")
    assert '<td colspan="11">No entry matches these filters.' in nothing.text
    nobody = auditor.submit("/console/audit/subjects", {"product": CAPTURES, "subject": "粤B·1"})
    assert '<td colspan="10">No read returned records' in nobody.text


def test_the_decision_filter_speaks_both_languages(exchange: Exchange, browser: Any) -> None:
    page = _explore(browser("auditor"))
    options = re.findall(r'<option value="(\w*)"[^>]*>([^<]*)</option>', page.text)
    assert options == [("", "any 全部"), ("allow", "allowed 允许"), ("deny", "denied 拒绝")]
    assert "<title>Audit log 审计日志 · " in page.text


def test_each_filter_narrows_as_the_api_does(exchange: Exchange, browser: Any) -> None:
    _day(exchange)
    auditor = browser("auditor")
    mapco = exchange.parties["mapco"].client_id
    before = _log(exchange)
    middle = before[len(before) // 2]["entry"]["time"]
    cases = [
        {"organization": "lingnan-maps"},
        {"actor": mapco},
        {"purpose": "law_enforcement"},
        {"action": "publish"},
        {"decision": "allow", "organization": "gz-traffic-police"},
        {"from": middle, "action": "read"},
        {"to": middle},
    ]
    for filters in cases:
        shown = _rows(_explore(auditor, **filters).text)
        expected = [e["index"] for e in _log(exchange, **filters) if e["index"] < len(before)]
        assert [i for i in shown if i < len(before)] == expected, filters
        assert expected, filters


def test_paging_keeps_the_filters(exchange: Exchange, browser: Any) -> None:
    _day(exchange)
    for purpose in ("commercial", "advertising", "commercial"):
        assert exchange.get("mapco", READS, params={"purpose": purpose}).status_code == 403
    expected = [e["index"] for e in _log(exchange, product=CAPTURES, decision="deny")]
    assert len(expected) == 5
    auditor = browser("auditor")
    page = _explore(auditor, product=CAPTURES, decision="deny", limit=2)
    seen, pages = _rows(page.text), 1
    while (link := _next_link(page.text)) is not None:
        assert f"product={CAPTURES}" in link and "decision=deny" in link and "limit=2" in link
        assert "actor=" not in link  # blank fields are left out
        page = auditor.get(link)
        assert page.status_code == 200, text_of(page.text)[:300]
        assert f'name="product" value="{CAPTURES}"' in page.text
        seen += _rows(page.text)
        pages += 1
        assert pages < 10
    assert seen == expected
    assert pages == 3


def test_the_explorer_view_is_itself_audited(exchange: Exchange, browser: Any) -> None:
    _day(exchange)
    auditor = browser("auditor")
    page = _explore(auditor, product=CAPTURES, decision="deny")
    (entry,) = [
        e["entry"]
        for e in _log(exchange, action="audit.read")
        if e["entry"]["request_id"] == page.headers["x-request-id"]
    ]
    assert entry["actor"] == exchange.parties["auditor"].client_id
    assert entry["decision"] == "allow"
    assert entry["details"]["filters"] == {"product": CAPTURES, "decision": "deny"}
    assert entry["record_count"] == 2


# --- the export -------------------------------------------------------------------------


def test_the_export_is_the_apis_for_the_same_filters(exchange: Exchange, browser: Any) -> None:
    _day(exchange)
    auditor = browser("auditor")
    page = _explore(auditor, product=CAPTURES, decision="deny")
    link = html.unescape(re.search(r'id="export" href="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    assert link == f"/console/audit/export?product={CAPTURES}&decision=deny"
    download = auditor.get(link)
    assert download.status_code == 200, text_of(download.text)[:300]
    assert download.headers["content-type"] == "application/x-ndjson"
    assert re.fullmatch(
        r'attachment; filename="audit-\d{8}T\d{6}Z\.ndjson"',
        download.headers["content-disposition"],
    )
    api = exchange.get(
        "auditor", "/v1/audit/export", params={"product": CAPTURES, "decision": "deny"}
    )
    assert api.status_code == 200, api.text

    def entries(body: str) -> list[tuple[int, dict[str, Any], str]]:
        lines = [json.loads(line) for line in body.splitlines()[1:]]
        return [(item["index"], item["entry"], item["leaf_hash"]) for item in lines]

    mine = entries(download.text)
    assert mine == entries(api.text)
    assert [index for index, _, _ in mine] == [
        e["index"] for e in _log(exchange, product=CAPTURES, decision="deny")
    ]
    key = Verifier.parse(exchange.client.get("/v1/audit/public-key").text)
    report = verify_export(download.text.splitlines(keepends=True), key)
    assert isinstance(report, ExportReport), report
    assert report.entries == 2
    (logged,) = [
        e["entry"]
        for e in _log(exchange, action="audit.export")
        if e["entry"]["request_id"] == download.headers["x-request-id"]
    ]
    assert logged["actor"] == exchange.parties["auditor"].client_id
    assert logged["details"]["filters"] == {"product": CAPTURES, "decision": "deny"}


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/console/audit/entries", {"from": "yesterday"}, "from"),
        ("/console/audit/entries", {"to": "2026-11-28T08:00:00"}, "to"),
        ("/console/audit/entries", {"from": "2026-13-01T00:00:00Z"}, "from"),
        ("/console/audit/export", {"from": "not-a-time"}, "from"),
        ("/console/audit/export", {"to": "28/11/2026"}, "to"),
        ("/console/audit/entries", {"decision": "maybe"}, "decision"),
        ("/console/audit/entries", {"cursor": "not-a-cursor"}, "cursor"),
        ("/console/audit/entries", {"limit": "0"}, "limit"),
        ("/console/audit/entries", {"limit": "many"}, "limit"),
        ("/console/audit/export", {"limit": "-1"}, "limit"),
        ("/console/audit/charts", {"days": "0"}, "days"),
        ("/console/audit/charts", {"days": "fortnight"}, "days"),
        ("/console/audit/charts", {"days": "100000"}, "days"),
    ],
    ids=repr,
)
def test_bad_filter_values_are_a_400_page_naming_the_field(
    exchange: Exchange, browser: Any, path: str, params: dict[str, str], field: str
) -> None:
    auditor = browser("auditor")
    before = len(_log(exchange))
    response = auditor.get(path, params=params)
    _problem(response, 400, field)
    assert "text/html" in response.headers["content-type"]
    assert "content-disposition" not in response.headers
    # nothing was read, so nothing but the API check itself was logged
    assert [e["entry"]["action"] for e in _log(exchange)[before:]] == ["audit.read"]


# --- the checkpoint and verification ---------------------------------------------------


@pytest.fixture
def raw(exchange: Exchange) -> Iterator[Engine]:
    engine = create_engine(exchange.settings.resolved_database_url)
    yield engine
    engine.dispose()


def _unguard(engine: Engine) -> None:
    """As the database's owner: switch the append-only guard on entries off."""
    with engine.begin() as connection:
        if POSTGRES:
            connection.execute(
                text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change")
            )
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS audit_entry_no_update"))


def _status(page: str) -> tuple[str, str | None]:
    found = re.search(r'id="verification-status" data-status="(\w+)"(?: data-entry="(\d+)")?', page)
    assert found, text_of(page)[:500]
    return found.group(1), found.group(2)


def test_the_checkpoint_page_shows_the_signed_checkpoint_and_ok(
    exchange: Exchange, browser: Any
) -> None:
    _day(exchange)
    auditor = browser("auditor")
    page = auditor.get("/console/audit/checkpoint")
    assert page.status_code == 200, text_of(page.text)[:500]
    assert _status(page.text) == ("ok", None)
    public = exchange.client.get("/v1/audit/public-key").text
    note = exchange.get("auditor", "/v1/audit/checkpoint").text
    signed = open_note(note, Verifier.parse(public))
    assert re.search(rf'id="checkpoint-size">{signed.size}<', page.text)
    assert f'id="checkpoint-root">{signed.root.hex()}<' in page.text
    assert f'id="checkpoint-key-id">{public.split("+")[1]}<' in page.text
    (time,) = [line.removeprefix("time ") for line in signed.extra]
    assert f'id="checkpoint-time">{time}<' in page.text
    logged = [
        e["entry"]["action"]
        for e in _log(exchange, actor=exchange.parties["auditor"].client_id)
        if e["entry"]["request_id"] == page.headers["x-request-id"]
    ]
    assert logged == ["audit.checkpoint", "audit.verify"]


def test_a_row_tampered_in_the_database_is_named_on_the_checkpoint_page(
    exchange: Exchange, browser: Any, raw: Engine
) -> None:
    _day(exchange)
    auditor = browser("auditor")
    assert _status(auditor.get("/console/audit/checkpoint").text) == ("ok", None)
    (denial,) = [e["index"] for e in _log(exchange, organization="lingnan-maps", decision="deny")]
    _unguard(raw)
    with raw.begin() as connection:
        connection.execute(
            text("UPDATE audit_entry SET reason = 'nothing to see' WHERE \"index\" = :i"),
            {"i": denial},
        )
    page = auditor.get("/console/audit/checkpoint")
    assert page.status_code == 200, text_of(page.text)[:500]
    assert _status(page.text) == ("failed", str(denial))
    assert f"entry 记录 {denial} (the first that does not verify" in text_of(page.text)
    assert "column reason differs from the hashed body" in text_of(page.text)
    verified = [e["entry"] for e in _log(exchange, action="audit.verify")]
    assert verified[-1]["details"] == {
        "size": verified[-1]["index"],
        "verified": False,
        "first_bad_entry": denial,
    }


def test_a_fresh_checkpoint_is_signed_from_the_page_with_the_csrf_token(
    exchange: Exchange, browser: Any, raw: Engine
) -> None:
    _day(exchange)
    auditor = browser("auditor")
    auditor.get("/console/audit/checkpoint")

    def checkpoints() -> int:
        with raw.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM audit_checkpoint")).scalar())

    before = checkpoints()
    forged = auditor.http.post("/console/audit/checkpoint", data={"csrf": "forged"})
    assert forged.status_code == 403, text_of(forged.text)[:300]
    assert checkpoints() == before
    page = auditor.follow(auditor.submit("/console/audit/checkpoint", {}))
    assert "A fresh checkpoint was signed" in text_of(page.text)
    assert checkpoints() == before + 1
    assert _status(page.text) == ("ok", None)


# --- the subject report ----------------------------------------------------------------


def test_the_subject_report_lists_who_read_records_about_the_plate(
    exchange: Exchange, browser: Any
) -> None:
    _day(exchange)
    auditor = browser("auditor")
    form = auditor.get("/console/audit/subjects")
    assert form.status_code == 200
    assert 'id="subject-form" method="post"' in form.text
    report = auditor.submit("/console/audit/subjects", {"product": CAPTURES, "subject": PLATE})
    assert report.status_code == 200, text_of(report.text)[:500]
    api = exchange.post(
        "auditor", "/v1/audit/subjects", json={"product": CAPTURES, "subject": PLATE}
    ).json()["entries"]
    # the first page (cap-000002), cap-000005, the traffic-management read, mapco's read
    assert [e["entry"]["organization"] for e in api] == [
        "gz-traffic-police",
        "gz-traffic-police",
        "gz-traffic-police",
        "lingnan-maps",
    ]
    assert _rows(report.text) == [e["index"] for e in api]
    words = text_of(report.text)
    assert "law enforcement" in words and "navigation safety" in words
    assert f'value="{PLATE}"' in report.text  # the form keeps the question
    (logged,) = [
        e["entry"]
        for e in _log(exchange, action="audit.subject")
        if e["entry"]["request_id"] == report.headers["x-request-id"]
    ]
    assert logged["record_count"] == 4
    assert PLATE not in json.dumps(logged, ensure_ascii=False)
    nobody = auditor.submit("/console/audit/subjects", {"product": CAPTURES, "subject": "粤B·1"})
    assert _rows(nobody.text) == []
    assert "No read returned records about this subject" in text_of(nobody.text)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"product": CAPTURES, "subject": ""}, "subject"),
        ({"product": CAPTURES, "subject": "x" * 201}, "subject"),
        ({"product": CAPTURES, "subject": PLATE, "limit": "lots"}, "limit"),
        ({"product": CAPTURES, "subject": PLATE, "limit": "0"}, "limit"),
    ],
    ids=repr,
)
def test_a_bad_subject_form_is_a_422_naming_the_field(
    exchange: Exchange, browser: Any, fields: dict[str, str], field: str
) -> None:
    auditor = browser("auditor")
    before = len(_log(exchange))
    _problem(auditor.submit("/console/audit/subjects", fields), 422, field)
    assert [e["entry"]["action"] for e in _log(exchange)[before:]] == ["audit.read"]


def test_the_subject_form_needs_the_csrf_token(exchange: Exchange, browser: Any) -> None:
    auditor = browser("auditor")
    before = len(_log(exchange))
    refused = auditor.http.post(
        "/console/audit/subjects", data={"product": CAPTURES, "subject": PLATE}
    )
    assert refused.status_code == 403, text_of(refused.text)[:300]
    assert "audit.subject" not in [e["entry"]["action"] for e in _log(exchange)[before:]]


# --- the charts -------------------------------------------------------------------------


def _table(page: str, table_id: str) -> dict[str, int]:
    """A chart's table summed over its days: column heading → total."""
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S).group(1)  # type: ignore[union-attr]
    head = [text_of(cell) for cell in re.findall(r"<th>(.*?)</th>", body.split("</thead>")[0])]
    totals = dict.fromkeys(head[1:], 0)
    for row in re.findall(r"<tr data-day=[^>]*>(.*?)</tr>", body, re.S):
        for name, cell in zip(head[1:], re.findall(r"<td>(\d+)</td>", row), strict=True):
            totals[name] += int(cell)
    return totals


def _chart(page: str, chart_id: str) -> ET.Element:
    found = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', page, re.S)
    assert found, chart_id
    return ET.fromstring(found.group(0))


def _chart_totals(chart: ET.Element) -> dict[str, int]:
    totals: dict[str, int] = {}
    for rect in chart.iter(f"{SVG}rect"):
        if rect.get("data-series"):
            name = rect.get("data-series", "")
            totals[name] = totals.get(name, 0) + int(rect.get("data-value", "0"))
    return totals


def test_the_charts_count_the_accesses_made(exchange: Exchange, browser: Any) -> None:
    counted = _day(exchange)
    auditor = browser("auditor")
    # two days, so a test that runs across midnight (UTC) still sees every access
    page = auditor.get("/console/audit/charts", params={"days": 2})
    assert page.status_code == 200, text_of(page.text)[:500]
    organisations = {k: v for k, v in counted.items() if k not in ("allow", "deny")}
    assert _table(page.text, "table-by-organization") == organisations | {"Total 合计": 6}
    assert _table(page.text, "table-by-decision") == {
        "allowed 允许": counted["allow"],
        "denied 拒绝": counted["deny"],
        "Total 合计": 6,
    }
    by_organization = _chart(page.text, "chart-by-organization")
    assert _chart_totals(by_organization) == organisations
    by_decision = _chart(page.text, "chart-by-decision")
    assert _chart_totals(by_decision) == {"allowed": 4, "denied": 2}
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    assert re.findall(r'<tr data-day="([^"]+)">', page.text) == days * 2
    for rect in by_decision.iter(f"{SVG}rect"):
        if rect.get("data-series"):
            tip = rect.find(f"{SVG}title")
            assert tip is not None and tip.text is not None
            assert tip.text.startswith(tuple(days))
            assert tip.text.endswith(f"{rect.get('data-series')}: {rect.get('data-value')}")
    (logged,) = [
        e["entry"]
        for e in _log(exchange, action="audit.daily")
        if e["entry"]["request_id"] == page.headers["x-request-id"]
    ]
    assert logged["actor"] == exchange.parties["auditor"].client_id
    assert logged["decision"] == "allow"
    assert logged["details"]["days"] == 2


class _Clock:
    """The audit log's clock, set by the test (the log's times only go forward);
    `now` is the console's now."""

    def __init__(self, moment: datetime, now: datetime) -> None:
        self.moment = moment
        self.now = now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """Entries recorded at the time the test sets, from before the day's setup on.
    (Request it before `exchange`.)"""
    now = datetime.now(UTC).replace(microsecond=0)
    today = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    set_by_test = _Clock(today - timedelta(days=2, hours=2), now)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> "Frozen":  # type: ignore[override]
            return cls.fromtimestamp(set_by_test.moment.timestamp(), tz)

    monkeypatch.setattr("audit.store.datetime", Frozen)
    monkeypatch.setattr("exchange.console.auditor.utcnow", lambda: now)
    return set_by_test


def test_accesses_fall_on_their_utc_day_whatever_the_database_zone(
    clock: _Clock, exchange: Exchange, browser: Any
) -> None:
    if POSTGRES:
        # A zone eight hours east: 23:30 UTC is 07:30 the next day there.
        url = exchange.settings.resolved_database_url
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            name = connection.execute(text("SELECT current_database()")).scalar()
            connection.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Shanghai'"))
        engine.dispose()
        exchange.client.app.state.engine.dispose()
    exchange.register("fleet", captures_product())
    assert exchange.publish("fleet", CAPTURES, [capture(n) for n in (1, 2)]).status_code == 200
    today = clock.now.date()
    yesterday = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    reads = [
        # the day before yesterday, just before midnight UTC
        (yesterday - timedelta(minutes=30), "police", "law_enforcement", 200),
        (yesterday - timedelta(minutes=29), "police", "research", 200),
        (yesterday - timedelta(minutes=28), "mapco", "commercial", 403),
        # yesterday, just after
        (yesterday + timedelta(minutes=30), "lab", "law_enforcement", 403),
        (yesterday + timedelta(hours=1), "mapco", "navigation_safety", 200),
        # today
        (clock.now, "police", "law_enforcement", 200),
    ]
    for when, who, purpose, status in reads:
        clock.moment = when
        response = exchange.get(who, READS, params={"purpose": purpose})
        assert response.status_code == status, response.text
    auditor = browser("auditor")
    page = auditor.get("/console/audit/charts", params={"days": 3})
    assert page.status_code == 200, text_of(page.text)[:500]
    days = [(today - timedelta(days=back)).isoformat() for back in (2, 1, 0)]

    def per_day(table_id: str) -> dict[str, list[str]]:
        body = re.search(rf'<table id="{table_id}">(.*?)</table>', page.text, re.S).group(1)  # type: ignore[union-attr]
        return {
            day: re.findall(r"<td>(\d+)</td>", row)
            for day, row in re.findall(r'<tr data-day="([^"]+)">(.*?)</tr>', body, re.S)
        }

    # columns: gz-traffic-police, lingnan-maps, scut-mobility-lab, total
    assert per_day("table-by-organization") == {
        days[0]: ["2", "1", "0", "3"],
        days[1]: ["0", "1", "1", "2"],
        days[2]: ["1", "0", "0", "1"],
    }
    # columns: allowed, denied, total
    assert per_day("table-by-decision") == {
        days[0]: ["2", "1", "3"],
        days[1]: ["1", "1", "2"],
        days[2]: ["1", "0", "1"],
    }
    chart = _chart(page.text, "chart-by-decision")
    bars = [g.get("data-total") for g in chart.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert bars == ["3", "2", "1"]


def test_the_charts_default_to_a_fortnight_and_say_when_empty(
    exchange: Exchange, browser: Any
) -> None:
    page = browser("auditor").get("/console/audit/charts")
    assert page.status_code == 200, text_of(page.text)[:500]
    assert len(re.findall(r'<tr data-day="', page.text)) == 2 * 14
    assert text_of(page.text).count("No accesses in this window") == 2


# --- who may open the pages ------------------------------------------------------------

PAGES = [
    ("GET", "/console/audit", {}),
    ("GET", "/console/audit/entries", {}),
    ("GET", "/console/audit/entries", {"product": CAPTURES, "decision": "deny"}),
    ("GET", "/console/audit/export", {}),
    ("GET", "/console/audit/checkpoint", {}),
    ("POST", "/console/audit/checkpoint", {}),
    ("GET", "/console/audit/subjects", {}),
    ("POST", "/console/audit/subjects", {"product": CAPTURES, "subject": PLATE}),
    ("GET", "/console/audit/charts", {}),
]


@pytest.mark.parametrize("who", ["steward", "police", "fleet"])
def test_only_auditors_open_the_audit_pages_and_refusals_are_logged(
    exchange: Exchange, browser: Any, who: str
) -> None:
    _day(exchange)
    someone = browser(who)
    request_ids = []
    for method, path, fields in PAGES:
        if method == "GET":
            response = someone.get(path, params=fields)
        else:
            response = someone.submit(path, fields)
        assert response.status_code == 403, (path, text_of(response.text)[:300])
        assert "text/html" in response.headers["content-type"]
        assert "content-disposition" not in response.headers
        words = text_of(response.text)
        assert "Access denied" in words
        assert "lingnan-maps" not in words and 'id="audit-entries"' not in response.text
        request_ids.append(response.headers["x-request-id"])
    party = exchange.parties[who]
    denials = {
        e["entry"]["request_id"]: e["entry"]
        for e in _log(exchange, actor=party.client_id, decision="deny")
    }
    for request_id in request_ids:
        entry = denials[request_id]
        assert entry["action"] == "audit.read"
        assert entry["organization"] == party.organization
    # and the section is not in their navigation
    assert 'href="/console/audit"' not in someone.get("/console/catalog").text


def test_the_auditor_sees_the_section_and_lands_on_the_explorer(
    exchange: Exchange, browser: Any
) -> None:
    auditor = browser("auditor")
    assert 'href="/console/audit"' in auditor.get("/console/catalog").text
    landing = auditor.get("/console/audit")
    assert landing.status_code == 303
    assert landing.headers["location"] == "/console/audit/entries"
    page = auditor.follow(landing)
    assert page.status_code == 200
    for path in ("entries", "checkpoint", "subjects", "charts"):
        assert f'href="/console/audit/{path}"' in page.text
