"""Registering, changing and finding data products, through the HTTP API."""

from typing import Any

import pytest

from tests.conftest import Exchange
from tests.products import capture, captures_product

PROBLEM = "application/problem+json"
PRODUCT = "violation-captures"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return response.json()


def details(exchange: Exchange, who: str, slug: str = PRODUCT, **params: Any) -> Any:
    return exchange.get(who, f"/v1/products/{slug}", params=params)


# --- Registering --------------------------------------------------------------------------------


def test_register_makes_version_one_owned_by_the_callers_organisation(exchange: Exchange) -> None:
    response = exchange.post("fleet", "/v1/products", json=captures_product())

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["slug"] == PRODUCT
    assert body["version"] == 1
    assert body["publisher"] == "pearl-robotaxi"
    assert body["record_count"] == 0
    assert body["tier"] == "open"
    assert body["time_field"] == "captured_at"
    assert body["purposes"] == sorted(captures_product()["purposes"])
    assert [f["name"] for f in body["fields"]] == [f["name"] for f in captures_product()["fields"]]
    assert {f["name"]: f["sensitivity"] for f in body["fields"]}["location"] == "location"
    assert (body["pseudonym_epoch_days"], body["grid_resolution"]) == (30, 8)
    assert details(exchange, "mapco").json() == body


def test_register_is_audited(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product())

    entries = exchange.get(
        "auditor", "/v1/audit/entries", params={"action": "product.register"}
    ).json()["entries"]
    assert [(e["entry"]["product"], e["entry"]["organization"]) for e in entries] == [
        (PRODUCT, "pearl-robotaxi")
    ]


def test_a_taken_slug_is_a_conflict(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product())

    again = exchange.post("fleet", "/v1/products", json=captures_product(title="Again"))
    other = exchange.post("hotline", "/v1/products", json=captures_product(title="Theirs"))

    problem(again, 409)
    problem(other, 409)
    body = details(exchange, "fleet").json()
    assert (body["title"], body["publisher"], body["version"]) == (
        "Violation captures",
        "pearl-robotaxi",
        1,
    )


def _with_field(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [*captures_product()["fields"], *extra]


# (changes to the definition, the `field` the error names or None, text its reason contains)
INVALID = [
    pytest.param({"slug": "Violation Captures"}, "slug", "", id="slug-spaces-capitals"),
    pytest.param({"slug": "-captures"}, "slug", "", id="slug-leading-dash"),
    pytest.param({"slug": ""}, "slug", "", id="slug-empty"),
    pytest.param({"slug": "a" * 65}, "slug", "", id="slug-too-long"),
    pytest.param({"slug": "traffic/captures"}, "slug", "", id="slug-with-slash"),
    pytest.param({"tier": "secret"}, "tier", "", id="unknown-tier"),
    pytest.param({"purposes": []}, "purposes", "", id="empty-purposes"),
    pytest.param(
        {"purposes": ["law_enforcement", "Law Enforcement"]},
        None,
        "'Law Enforcement'",
        id="bad-purpose-name",
    ),
    pytest.param(
        {"fields": _with_field({"name": "plate", "type": "string"})},
        None,
        "duplicate field names: plate",
        id="duplicate-field-names",
    ),
    pytest.param(
        {"fields": _with_field({"name": "id", "type": "string"})},
        "fields.9",
        "'id' is reserved",
        id="reserved-id",
    ),
    pytest.param(
        {"fields": _with_field({"name": "seq", "type": "integer"})},
        "fields.9",
        "'seq' is reserved",
        id="reserved-seq",
    ),
    pytest.param(
        {"fields": _with_field({"name": "home", "type": "geo_point", "sensitivity": "none"})},
        "fields.9",
        "location",
        id="geo-point-not-location",
    ),
    pytest.param(
        {"fields": _with_field({"name": "face", "type": "image_ref", "sensitivity": "personal"})},
        "fields.9",
        "image",
        id="image-not-image",
    ),
    pytest.param(
        {"fields": _with_field({"name": "Lane2", "type": "integer"})},
        "fields.9.name",
        "",
        id="bad-field-name",
    ),
    pytest.param(
        {"fields": _with_field({"name": "lane2", "type": "text"})},
        "fields.9.type",
        "",
        id="unknown-field-type",
    ),
    pytest.param({"fields": []}, "fields", "", id="no-fields"),
    pytest.param(
        {"time_field": "violation_type"},
        None,
        "time_field 'violation_type' is not a timestamp",
        id="time-field-not-timestamp",
    ),
    pytest.param(
        {"time_field": "seen_at"},
        None,
        "time_field 'seen_at'",
        id="time-field-unknown",
    ),
    pytest.param({"retention_days": 0}, "retention_days", "", id="retention-zero"),
    pytest.param({"tags": ["Traffic!"]}, None, "'Traffic!'", id="bad-tag"),
    pytest.param({"title": ""}, "title", "", id="empty-title"),
    pytest.param({"pseudonym_epoch_days": 0}, "pseudonym_epoch_days", "", id="epoch-zero"),
    pytest.param({"pseudonym_epoch_days": 367}, "pseudonym_epoch_days", "", id="epoch-long"),
    pytest.param({"grid_resolution": 3}, "grid_resolution", "", id="grid-coarse"),
    pytest.param({"grid_resolution": 11}, "grid_resolution", "", id="grid-fine"),
    *[
        pytest.param({"fields": _with_field(spec)}, where, reason, id=name)
        for name, spec, where, reason in [
            (
                "bucket-on-a-number",
                {"name": "weight", "type": "number", "generalization": {"time_bucket": "hour"}},
                "fields.9",
                "field 'weight': time_bucket generalizes timestamp fields, not a number field",
            ),
            (
                "bands-on-a-timestamp",
                {"name": "seen_at", "type": "timestamp", "generalization": {"bands": [0, 1]}},
                "fields.9",
                "field 'seen_at': bands generalizes number or integer fields",
            ),
            (
                "round-on-a-string",
                {"name": "colour", "type": "string", "generalization": {"round_to": 5}},
                "fields.9",
                "field 'colour': round_to generalizes number or integer fields",
            ),
            (
                "resolution-on-a-number",
                {"name": "weight", "type": "number", "generalization": {"resolution": 7}},
                "fields.9",
                "field 'weight': resolution generalizes geo_point fields",
            ),
            (
                "bucket-on-an-image",
                {
                    "name": "scene",
                    "type": "image_ref",
                    "sensitivity": "image",
                    "generalization": {"time_bucket": "day"},
                },
                "fields.9",
                "field 'scene'",
            ),
            (
                "fractional-round-on-an-integer",
                {"name": "axles", "type": "integer", "generalization": {"round_to": 2.5}},
                "fields.9",
                "field 'axles': an integer field rounds to a whole number",
            ),
            (
                "unknown-bucket",
                {"name": "seen_at", "type": "timestamp", "generalization": {"time_bucket": "week"}},
                "fields.9.generalization.time_bucket",
                "",
            ),
            (
                "empty-bands",
                {"name": "weight", "type": "number", "generalization": {"bands": []}},
                "fields.9.generalization",
                "at least one edge",
            ),
            (
                "bands-not-ascending",
                {"name": "weight", "type": "number", "generalization": {"bands": [0, 50, 50]}},
                "fields.9.generalization",
                "strictly ascending",
            ),
            (
                "bands-descending",
                {"name": "weight", "type": "number", "generalization": {"bands": [80, 60]}},
                "fields.9.generalization",
                "strictly ascending",
            ),
            (
                "band-not-a-number",
                {"name": "weight", "type": "number", "generalization": {"bands": [0, "x"]}},
                "fields.9.generalization.bands.1.int",
                "",
            ),
            (
                "round-to-zero",
                {"name": "weight", "type": "number", "generalization": {"round_to": 0}},
                "fields.9.generalization.round_to",
                "greater than 0",
            ),
            (
                "round-to-negative",
                {"name": "weight", "type": "number", "generalization": {"round_to": -5}},
                "fields.9.generalization.round_to",
                "greater than 0",
            ),
            (
                "round-to-true",
                {"name": "weight", "type": "number", "generalization": {"round_to": True}},
                "fields.9.generalization.round_to",
                "not true or false",
            ),
            (
                "round-to-vanishing",
                {"name": "weight", "type": "number", "generalization": {"round_to": 1e-320}},
                "fields.9.generalization",
                "at least",
            ),
            (
                "round-to-huge",
                {"name": "weight", "type": "number", "generalization": {"round_to": 10**400}},
                "fields.9.generalization",
                "at most",
            ),
            (
                "band-edge-huge",
                {"name": "weight", "type": "number", "generalization": {"bands": [0, 10**400]}},
                "fields.9.generalization",
                "at most",
            ),
            (
                "two-generalizations",
                {
                    "name": "weight",
                    "type": "number",
                    "generalization": {"round_to": 5, "bands": [0, 50]},
                },
                "fields.9.generalization",
                "exactly one of",
            ),
            (
                "no-generalization",
                {"name": "weight", "type": "number", "generalization": {}},
                "fields.9.generalization",
                "exactly one of",
            ),
            (
                "unknown-generalization",
                {"name": "weight", "type": "number", "generalization": {"noise": 1}},
                "fields.9.generalization.noise",
                "",
            ),
            (
                "resolution-too-fine",
                {
                    "name": "home",
                    "type": "geo_point",
                    "sensitivity": "location",
                    "generalization": {"resolution": 11},
                },
                "fields.9.generalization.resolution",
                "",
            ),
        ]
    ],
]


@pytest.mark.parametrize(("changes", "field", "reason"), INVALID)
def test_an_invalid_definition_is_rejected_naming_the_place(
    exchange: Exchange, changes: dict[str, Any], field: str | None, reason: str
) -> None:
    definition = captures_product(**changes)

    body = problem(exchange.post("fleet", "/v1/products", json=definition), 400)

    errors = body["errors"]
    assert errors
    if field is not None:
        assert field in [e.get("field") for e in errors], errors
    assert any(reason in e["reason"] for e in errors), errors
    slug = definition["slug"] or "x"
    assert exchange.get("fleet", f"/v1/products/{slug}").status_code == 404
    assert exchange.get("fleet", "/v1/products").json()["products"] == []


GENERALIZED_FIELDS = [
    {
        "name": "captured_at",
        "type": "timestamp",
        "sensitivity": "location",
        "generalization": {"time_bucket": "hour"},
    },
    {
        "name": "location",
        "type": "geo_point",
        "sensitivity": "location",
        "generalization": {"resolution": 7},
    },
    {"name": "violation_type", "type": "string"},
    {"name": "plate", "type": "string", "sensitivity": "personal"},
    {
        "name": "speed_kmh",
        "type": "number",
        "sensitivity": "personal",
        "generalization": {"bands": [0, 30, 50.5, 80]},
    },
    {
        "name": "lane",
        "type": "integer",
        "sensitivity": "personal",
        "generalization": {"round_to": 2},
    },
    {"name": "photo", "type": "image_ref", "sensitivity": "image"},
]


def test_fields_declare_how_they_are_generalized(exchange: Exchange) -> None:
    body = exchange.register("fleet", captures_product(fields=GENERALIZED_FIELDS))

    assert {f["name"]: f["generalization"] for f in body["fields"]} == {
        "captured_at": {"time_bucket": "hour"},
        "location": {"resolution": 7},
        "violation_type": None,
        "plate": None,
        "speed_kmh": {"bands": [0, 30, 50.5, 80]},
        "lane": {"round_to": 2},
        "photo": None,
    }
    assert details(exchange, "mapco").json()["fields"] == body["fields"]


def test_a_patch_adds_changes_and_drops_a_generalization(exchange: Exchange) -> None:
    exchange.register("fleet", captures_product())
    path = f"/v1/products/{PRODUCT}"
    fields = captures_product()["fields"]
    speed = {"name": "speed_kmh", "type": "number", "sensitivity": "personal"}

    banded = [
        f if f["name"] != "speed_kmh" else {**speed, "generalization": {"bands": [50]}}
        for f in fields
    ]
    rounded = [
        f if f["name"] != "speed_kmh" else {**speed, "generalization": {"round_to": 10}}
        for f in fields
    ]
    for version, changed, shown in [
        (2, banded, {"bands": [50]}),
        (3, rounded, {"round_to": 10}),
        (4, fields, None),
    ]:
        response = exchange.patch("fleet", path, json={"fields": changed})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["version"] == version
        assert {f["name"]: f["generalization"] for f in body["fields"]}["speed_kmh"] == shown
    assert details(exchange, "fleet", version=2).json()["fields"][4]["generalization"] == {
        "bands": [50]
    }


@pytest.mark.parametrize(
    ("generalization", "field", "reason"),
    [
        ({"time_bucket": "hour"}, "fields.4", "field 'speed_kmh': time_bucket generalizes"),
        ({"bands": [30, 20]}, "fields.4.generalization", "strictly ascending"),
        ({"bands": []}, "fields.4.generalization", "at least one edge"),
    ],
)
def test_a_patch_with_a_generalization_that_does_not_fit_is_refused(
    exchange: Exchange, generalization: dict[str, Any], field: str, reason: str
) -> None:
    exchange.register("fleet", captures_product())
    fields = [
        {**f, "generalization": generalization} if f["name"] == "speed_kmh" else f
        for f in captures_product()["fields"]
    ]

    body = problem(exchange.patch("fleet", f"/v1/products/{PRODUCT}", json={"fields": fields}), 400)

    assert field in [e.get("field") for e in body["errors"]], body["errors"]
    assert any(reason in e["reason"] for e in body["errors"]), body["errors"]
    assert details(exchange, "fleet").json()["version"] == 1


@pytest.mark.parametrize("who", ["police", "mapco", "steward", "auditor"])
def test_only_publishers_may_register(exchange: Exchange, who: str) -> None:
    body = problem(exchange.post(who, "/v1/products", json=captures_product()), 403)

    assert body["type"] == "urn:exchange:problem:access_denied"
    assert details(exchange, "fleet").status_code == 404


def test_the_hotline_registers_as_its_own_organisation(exchange: Exchange) -> None:
    body = exchange.register("hotline", captures_product("citizen-calls", "government_only"))
    assert body["publisher"] == "gz-12345"


# --- Changing -----------------------------------------------------------------------------------


@pytest.fixture
def registered(exchange: Exchange) -> Exchange:
    exchange.register("fleet", captures_product())
    return exchange


def test_patch_by_the_owner_makes_a_new_version(registered: Exchange) -> None:
    change = {"title": "Violation captures, second edition", "retention_days": 30}

    response = registered.patch("fleet", f"/v1/products/{PRODUCT}", json=change)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert body["title"] == change["title"]
    assert body["retention_days"] == 30
    assert [f["name"] for f in body["fields"]] == [f["name"] for f in captures_product()["fields"]]

    current = details(registered, "mapco").json()
    assert (current["version"], current["title"], current["retention_days"]) == (
        2,
        change["title"],
        30,
    )
    old = details(registered, "mapco", version=1).json()
    assert (old["version"], old["title"], old["retention_days"]) == (1, "Violation captures", 90)
    problem(details(registered, "mapco", version=3), 404)


def test_a_changed_field_list_applies_to_new_records(registered: Exchange) -> None:
    fields = [*captures_product()["fields"], {"name": "weather", "type": "string"}]
    assert (
        registered.patch("fleet", f"/v1/products/{PRODUCT}", json={"fields": fields}).json()[
            "version"
        ]
        == 2
    )

    without_weather = registered.publish("fleet", PRODUCT, [capture(1)])
    with_weather = registered.publish("fleet", PRODUCT, [capture(2, weather="rain")])

    problem(without_weather, 422)
    assert with_weather.status_code == 200, with_weather.text
    assert details(registered, "fleet", version=1).json()["fields"][-1]["name"] == "photo"


def test_the_changed_title_is_what_search_finds(registered: Exchange) -> None:
    registered.patch("fleet", f"/v1/products/{PRODUCT}", json={"title": "Kerbside evidence"})

    found = registered.get("mapco", "/v1/products", params={"q": "kerbside"}).json()
    assert [p["slug"] for p in found["products"]] == [PRODUCT]
    assert found["products"][0]["version"] == 2


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"purposes": []}, "purposes", ""),
        ({"retention_days": 0}, "retention_days", ""),
        ({"title": ""}, "title", ""),
        ({"time_field": "plate"}, None, "time_field 'plate'"),
        ({"purposes": ["law_enforcement", "Not A Purpose"]}, None, "'Not A Purpose'"),
        ({"pseudonym_epoch_days": 0}, "pseudonym_epoch_days", ""),
        ({"grid_resolution": 16}, "grid_resolution", ""),
    ],
)
def test_an_invalid_change_is_422_and_the_product_stays(
    registered: Exchange, change: dict[str, Any], field: str | None, reason: str
) -> None:
    response = registered.patch("fleet", f"/v1/products/{PRODUCT}", json=change)

    body = problem(response, 422)
    assert body["type"] == "urn:exchange:problem:validation_failed"
    if field is not None:
        assert field in [e.get("field") for e in body["errors"]], body["errors"]
    assert any(reason in e["reason"] for e in body["errors"]), body["errors"]
    current = details(registered, "fleet").json()
    assert current["version"] == 1
    assert current == registered.get("fleet", f"/v1/products/{PRODUCT}?version=1").json()
    problem(details(registered, "fleet", version=2), 404)


@pytest.mark.parametrize("who", ["hotline", "mapco", "police", "steward"])
def test_only_the_owner_may_patch(registered: Exchange, who: str) -> None:
    response = registered.patch(who, f"/v1/products/{PRODUCT}", json={"title": "Mine now"})

    problem(response, 403)
    current = details(registered, "fleet").json()
    assert (current["version"], current["title"]) == (1, "Violation captures")


def test_patching_an_unknown_product_is_not_found(registered: Exchange) -> None:
    problem(registered.patch("fleet", "/v1/products/no-such", json={"title": "x"}), 404)


def test_a_patch_to_government_only_hides_the_product_from_companies(
    registered: Exchange,
) -> None:
    response = registered.patch(
        "fleet", f"/v1/products/{PRODUCT}", json={"tier": "government_only"}
    )
    assert response.status_code == 200, response.text

    problem(details(registered, "mapco"), 404)
    assert registered.get("mapco", "/v1/products").json()["products"] == []
    assert details(registered, "police").json()["tier"] == "government_only"
    assert details(registered, "fleet").json()["version"] == 2


# --- Search -------------------------------------------------------------------------------------

CATALOG = [
    ("fleet", captures_product()),
    (
        "fleet",
        captures_product(
            "ride-demand",
            "regulated",
            title="Ride demand",
            description="Trips per hour, 100% of the fleet",
            tags=["mobility"],
        ),
    ),
    (
        "hotline",
        captures_product(
            "citizen-complaints",
            "government_only",
            title="Citizen complaints",
            description="Calls to the 12345 hotline about traffic",
            tags=["traffic", "complaints"],
        ),
    ),
    (
        "hotline",
        captures_product(
            "road-works",
            title="Road works",
            description="Closures at 100 sites, sampled daily",
            tags=["roads", "bus-lane"],
        ),
    ),
    (
        "fleet",
        captures_product(
            "curb-usage",
            title="Curb usage",
            description="Pick-up and drop-off counts",
            tags=["mobility"],
        ),
    ),
]
EVERY_SLUG = [definition["slug"] for _, definition in CATALOG]


@pytest.fixture
def catalog(exchange: Exchange) -> Exchange:
    for who, definition in CATALOG:
        exchange.register(who, definition)
    return exchange


def search(exchange: Exchange, who: str, **params: Any) -> list[str]:
    response = exchange.get(who, "/v1/products", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return [product["slug"] for product in response.json()["products"]]


def test_everything_a_government_subscriber_may_discover(catalog: Exchange) -> None:
    assert search(catalog, "police") == EVERY_SLUG


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("CAPTURES", [PRODUCT]),
        ("robotaxi CAMERA", [PRODUCT]),
        ("road-wo", ["road-works"]),
        ("citizen", ["citizen-complaints"]),
        ("100", ["ride-demand", "road-works"]),
        ("100%", ["ride-demand"]),
        ("%", ["ride-demand"]),
        ("pick_up", []),
        ("nothing like it", []),
    ],
)
def test_q_finds_text_in_slug_title_or_description(
    catalog: Exchange, q: str, expected: list[str]
) -> None:
    assert search(catalog, "police", q=q) == expected


def test_tier_filter(catalog: Exchange) -> None:
    assert search(catalog, "police", tier="regulated") == ["ride-demand"]
    assert search(catalog, "police", tier="open") == [PRODUCT, "road-works", "curb-usage"]
    assert search(catalog, "police", tier="government_only") == ["citizen-complaints"]
    problem(catalog.get("police", "/v1/products", params={"tier": "secret"}), 400)


def test_tag_filter(catalog: Exchange) -> None:
    assert search(catalog, "police", tag="traffic") == [PRODUCT, "citizen-complaints"]
    assert search(catalog, "police", tag="mobility") == ["ride-demand", "curb-usage"]
    assert search(catalog, "police", tag="complaints") == ["citizen-complaints"]
    assert search(catalog, "police", tag="traff") == []


def test_tag_filter_matches_the_tag_literally(catalog: Exchange) -> None:
    assert search(catalog, "police", tag="bus-lane") == ["road-works"]
    assert search(catalog, "police", tag="bus_lane") == []
    assert search(catalog, "police", tag="%") == []


def test_publisher_filter(catalog: Exchange) -> None:
    assert search(catalog, "police", publisher="gz-12345") == ["citizen-complaints", "road-works"]
    assert search(catalog, "police", publisher="pearl-robotaxi") == [
        PRODUCT,
        "ride-demand",
        "curb-usage",
    ]
    assert search(catalog, "police", publisher="nobody") == []


def test_filters_combine(catalog: Exchange) -> None:
    assert search(catalog, "police", publisher="pearl-robotaxi", tag="mobility", q="curb") == [
        "curb-usage"
    ]
    assert search(catalog, "police", tier="open", tag="traffic") == [PRODUCT]


def test_search_pages_with_limit_and_cursor(catalog: Exchange) -> None:
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = catalog.get("police", "/v1/products", params=params)
        assert response.status_code == 200, response.text
        pages.append([p["slug"] for p in response.json()["products"]])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, "the cursor never ends"

    assert pages == [EVERY_SLUG[0:2], EVERY_SLUG[2:4], EVERY_SLUG[4:5]]
    problem(catalog.get("police", "/v1/products", params={"cursor": "forged"}), 400)
    problem(catalog.get("police", "/v1/products", params={"limit": 0}), 400)


def test_the_catalog_hides_government_only_products_from_companies(catalog: Exchange) -> None:
    visible = [slug for slug in EVERY_SLUG if slug != "citizen-complaints"]

    assert search(catalog, "mapco") == visible
    assert search(catalog, "lab") == visible
    assert search(catalog, "mapco", tag="traffic") == [PRODUCT]
    assert search(catalog, "mapco", q="citizen") == []
    problem(details(catalog, "mapco", "citizen-complaints"), 404)
    problem(details(catalog, "mapco", "citizen-complaints", version=1), 404)
    assert details(catalog, "police", "citizen-complaints").status_code == 200
    assert search(catalog, "hotline", q="citizen") == ["citizen-complaints"]
    assert search(catalog, "fleet", tier="government_only") == []


def test_the_catalog_needs_a_token(catalog: Exchange) -> None:
    problem(catalog.client.get("/v1/products"), 401)
