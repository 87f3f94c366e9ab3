"""Pure parts of feeds, without a server: Standard Webhooks signing (checked with the
reference `standardwebhooks` library), the SSRF guard, filter matching and validation,
and the delivery backoff and Retry-After parsing."""

import base64
import itertools
import json
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from exchange.feeds import signing, targets
from exchange.feeds.delivery import backoff, retry_after
from exchange.feeds.filters import FeedFilter, matches

# --- signing -----------------------------------------------------------------------------------

BODY = json.dumps(
    {"type": "records.published", "data": {"plate": "粤A·12345"}}, ensure_ascii=False
).encode()


def signed(secrets: list[str], body: bytes = BODY, message_id: str = "msg_1") -> dict[str, str]:
    return signing.headers(secrets, message_id, int(time.time()), body)


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert len({signing.new_secret() for _ in range(50)}) == 50


def test_one_secret_verifies_with_the_reference_library() -> None:
    secret = signing.new_secret()
    headers = signed([secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert " " not in headers["webhook-signature"]
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


def test_the_signature_is_the_reference_librarys() -> None:
    secret = signing.new_secret()
    moment = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    ours = signing.signature(secret, "msg_abc_7", int(moment.timestamp()), BODY)
    assert ours == Webhook(secret).sign("msg_abc_7", moment, BODY.decode())


def test_two_secrets_in_force_both_verify() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signed([new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(BODY, headers)
    assert Webhook(old).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


@pytest.mark.parametrize("secrets", [1, 2])
def test_a_tampered_message_fails(secrets: int) -> None:
    keys = [signing.new_secret() for _ in range(secrets)]
    headers = signed(keys)
    verifier = Webhook(keys[-1])
    tampered_body = BODY.replace(b"12345", b"99999")
    assert tampered_body != BODY
    later = headers | {"webhook-timestamp": str(int(headers["webhook-timestamp"]) + 1)}
    other_id = headers | {"webhook-id": "msg_2"}
    for body, changed in ((tampered_body, headers), (BODY, later), (BODY, other_id)):
        with pytest.raises(WebhookVerificationError):
            verifier.verify(body, changed)
    verifier.verify(BODY, headers)


def test_an_old_timestamp_fails_at_the_receiver() -> None:
    secret = signing.new_secret()
    stale = signing.headers([secret], "msg_1", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, stale)


# --- targets: the SSRF guard -------------------------------------------------------------------

PRIVATE = [
    "https://127.0.0.1/",
    "https://127.1/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://localhost/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.0.1/",
    "https://100.64.0.1/",
    "https://169.254.169.254/latest",
    "https://0.0.0.0/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://[::1]/",
    "https://[::]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:93.184.216.34]/",
    "https://[2002:7f00:1::]/",
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://[ff02::1]/",
    "https://[ff0e::1]/",
    "https://[2001:db8::1]/",
]
PUBLIC = [
    "https://93.184.216.34/hook",
    "https://93.184.216.34:8443/hook?x=1",
    "https://[2606:4700:4700::1111]/hook",
]
ALWAYS_REFUSED = [
    "https://user:pw@example.com/",
    "https://user@93.184.216.34/",
    "https://:pw@93.184.216.34/",
    "https://93.184.216.34/hook#part",
    "ftp://93.184.216.34/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/",
    "https:///hook",
    "https://93.184.216.34:99999/",
    "not a url",
    "https://93.184.216.34/" + "a" * targets.MAX_URL,
    "https://no-such-host.invalid/",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(targets.Refused, match="not a public address"):
        targets.checked(url, allow_private=False)
    assert targets.checked(url.replace("https", "http", 1), allow_private=True).scheme == "http"
    assert targets.checked(url, allow_private=True).scheme == "https"


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_are_accepted(url: str) -> None:
    target = targets.checked(url, allow_private=False)
    assert target.url == url and target.scheme == "https"


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_credentials_fragments_other_schemes_and_nonsense_are_refused(
    url: str, allow_private: bool
) -> None:
    with pytest.raises(targets.Refused):
        targets.checked(url, allow_private=allow_private)


def test_http_only_when_private_targets_are_allowed() -> None:
    with pytest.raises(targets.Refused, match="https"):
        targets.checked("http://93.184.216.34/hook", allow_private=False)
    target = targets.checked("http://93.184.216.34/hook", allow_private=True)
    assert (target.scheme, target.port) == ("http", 80)


@pytest.mark.parametrize(
    "url",
    ["https://[64:ff9b::a00:1]/", "https://[64:ff9b:1::a9fe:a9fe]/", "https://[::a00:1]/"],
)
def test_ipv4_hidden_in_other_ipv6_forms_is_refused(url: str) -> None:
    with pytest.raises(targets.Refused):
        targets.checked(url, allow_private=False)


def test_a_target_resolves_and_pins_its_address() -> None:
    target = targets.checked("https://93.184.216.34/hook?a=1&b=2", allow_private=False)
    assert (target.host, target.address, target.port) == ("93.184.216.34", "93.184.216.34", 443)
    assert target.pinned_url == "https://93.184.216.34:443/hook?a=1&b=2"
    assert target.host_header == "93.184.216.34"

    local = targets.checked("http://localhost:8080", allow_private=True)
    assert local.address in {"127.0.0.1", "::1"}
    assert local.pinned_url.endswith(":8080/")
    assert local.host_header == "localhost:8080"


@pytest.mark.parametrize(
    ("url", "address", "port", "pinned", "host"),
    [
        (
            "https://example.com/hook?x=1",
            "93.184.216.34",
            443,
            "https://93.184.216.34:443/hook?x=1",
            "example.com",
        ),
        ("https://example.com", "93.184.216.34", 443, "https://93.184.216.34:443/", "example.com"),
        (
            "https://example.com:8443/in",
            "93.184.216.34",
            8443,
            "https://93.184.216.34:8443/in",
            "example.com:8443",
        ),
        ("http://example.com/in", "93.184.216.34", 80, "http://93.184.216.34:80/in", "example.com"),
        (
            "http://example.com:443/in",
            "93.184.216.34",
            443,
            "http://93.184.216.34:443/in",
            "example.com:443",
        ),
        (
            "https://example.com/in",
            "2606:2800:220:1::1",
            443,
            "https://[2606:2800:220:1::1]:443/in",
            "example.com",
        ),
    ],
)
def test_pinned_url_and_host_header(
    url: str, address: str, port: int, pinned: str, host: str
) -> None:
    scheme = url.split(":", 1)[0]
    target = targets.Target(url, "example.com", address, port, scheme)
    assert target.pinned_url == pinned
    assert target.host_header == host


@pytest.mark.parametrize(
    ("url", "host"),
    [("http://[::1]:8080/hook", "[::1]:8080"), ("https://[::1]/hook", "[::1]")],
)
def test_an_ipv6_host_header_is_bracketed(url: str, host: str) -> None:
    assert targets.checked(url, allow_private=True).host_header == host


def test_an_ipv6_target_pins_in_brackets() -> None:
    target = targets.checked("http://[::1]:8080/hook?q=1", allow_private=True)
    assert target.address == "::1"
    assert target.pinned_url == "http://[::1]:8080/hook?q=1"


# --- filters -----------------------------------------------------------------------------------

RECORD: dict[str, Any] = {
    "captured_at": "2026-12-01T08:00:00Z",
    "location": {"lat": 23.1, "lon": 113.3},
    "violation_type": "red_light",
    "lane": 1,
    "night": True,
    "speed_kmh": 42.5,
    "code": "1",
}


def passes(feed_filter: dict[str, Any], record: dict[str, Any] = RECORD) -> bool:
    return matches(feed_filter, record, "captured_at")


def test_an_empty_filter_passes_everything() -> None:
    assert passes({})
    assert passes({}, {})


@pytest.mark.parametrize(
    ("values", "field", "expected"),
    [
        (["red_light"], "violation_type", True),
        (["bus_lane", "red_light"], "violation_type", True),
        (["bus_lane"], "violation_type", False),
        (["Red_Light"], "violation_type", False),
        ([1], "lane", True),
        ([True], "lane", False),
        (["1"], "lane", False),
        ([True], "night", True),
        ([1], "night", False),
        ([False], "night", False),
        (["1"], "code", True),
        ([1], "code", False),
        (["red_light"], "missing", False),
    ],
)
def test_equals_is_equal_and_of_the_same_kind(
    values: list[Any], field: str, expected: bool
) -> None:
    assert passes({"equals": {field: values}}) is expected


def test_every_condition_must_hold() -> None:
    both = {"equals": {"violation_type": ["red_light"], "lane": [1]}, "at_least": {"lane": 1}}
    assert passes(both)
    assert not passes(both | {"at_most": {"speed_kmh": 40}})


@pytest.mark.parametrize(
    ("part", "bound", "field", "expected"),
    [
        ("at_least", 42.5, "speed_kmh", True),
        ("at_least", 42.4, "speed_kmh", True),
        ("at_least", 42.6, "speed_kmh", False),
        ("at_most", 42.5, "speed_kmh", True),
        ("at_most", 42.6, "speed_kmh", True),
        ("at_most", 42.4, "speed_kmh", False),
        ("at_least", 1, "lane", True),
        ("at_least", 1.5, "lane", False),
        ("at_most", 0.5, "lane", False),
        ("at_least", 0, "night", False),  # a boolean is not a number
        ("at_most", 10, "night", False),
        ("at_least", 0, "code", False),  # nor is a numeric string
        ("at_least", 0, "missing", False),
        ("at_most", 100, "missing", False),
    ],
)
def test_at_least_and_at_most_are_inclusive_on_numbers(
    part: str, bound: float, field: str, expected: bool
) -> None:
    assert passes({part: {field: bound}}) is expected


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([113.0, 23.0, 114.0, 24.0], True),
        ([113.3, 23.1, 113.3, 23.1], True),  # a degenerate box on the point
        ([113.3, 23.0, 114.0, 24.0], True),  # on the west edge
        ([113.0, 23.0, 113.3, 24.0], True),  # on the east edge
        ([113.0, 23.1, 114.0, 24.0], True),  # on the south edge
        ([113.0, 23.0, 114.0, 23.1], True),  # on the north edge
        ([113.31, 23.0, 114.0, 24.0], False),
        ([113.0, 23.0, 113.29, 24.0], False),
        ([113.0, 23.11, 114.0, 24.0], False),
        ([113.0, 23.0, 114.0, 23.09], False),
    ],
)
def test_within_includes_its_edges(box: list[float], expected: bool) -> None:
    assert passes({"within": {"location": box}}) is expected


def test_within_needs_a_point() -> None:
    box = {"within": {"location": [113.0, 23.0, 114.0, 24.0]}}
    assert not passes(box, {k: v for k, v in RECORD.items() if k != "location"})
    assert not passes(box, RECORD | {"location": "23.1,113.3"})


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"from": "2026-12-01T08:00:00Z"}, True),  # from is inclusive
        ({"from": "2026-12-01T08:00:00.000001Z"}, False),
        ({"from": "2026-12-01T16:00:00+08:00"}, True),  # the same moment, another offset
        ({"from": "2026-12-01T16:00:01+08:00"}, False),
        ({"to": "2026-12-01T08:00:00Z"}, False),  # to is exclusive
        ({"to": "2026-12-01T08:00:00.000001Z"}, True),
        ({"from": "2026-11-30T00:00:00Z", "to": "2026-12-02T00:00:00Z"}, True),
        ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-03T00:00:00Z"}, False),
    ],
)
def test_from_and_to_bound_the_time_field(window: dict[str, str], expected: bool) -> None:
    assert passes(window) is expected


def test_a_window_needs_the_time() -> None:
    window = {"from": "2026-11-30T00:00:00Z"}
    assert not passes(window, {k: v for k, v in RECORD.items() if k != "captured_at"})
    assert not matches(window, RECORD, None)


def test_a_validated_filter_round_trips_through_storage() -> None:
    made = FeedFilter.model_validate(
        {
            "equals": {"night": [True], "lane": [1], "code": ["1"]},
            "at_least": {"speed_kmh": 40},
            "within": {"location": [113, 23, 114, 24]},
            "from": "2026-12-01T16:00:00+08:00",
            "to": "2026-12-01T08:00:00.5Z",
        }
    )
    stored = made.stored()
    assert stored["equals"] == {"night": [True], "lane": [1], "code": ["1"]}
    assert set(stored) == {"equals", "at_least", "within", "from", "to"}
    assert json.loads(json.dumps(stored)) == stored
    assert matches(stored, RECORD, "captured_at")
    assert not matches(stored, RECORD | {"night": 1}, "captured_at")
    assert not matches(stored, RECORD | {"captured_at": "2026-12-01T08:00:00.5Z"}, "captured_at")
    assert FeedFilter().stored() == {}
    assert made.named_fields() == {
        "night": "filter.equals.night",
        "lane": "filter.equals.lane",
        "code": "filter.equals.code",
        "speed_kmh": "filter.at_least.speed_kmh",
        "location": "filter.within.location",
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"within": {"location": [114, 23, 113, 24]}},  # west east of east
        {"within": {"location": [113, 24, 114, 23]}},  # south north of north
        {"within": {"location": [-181, 23, 114, 24]}},
        {"within": {"location": [113, -91, 114, 24]}},
        {"within": {"location": [113, 23, 114, 91]}},
        {"within": {"location": [113, 23, 114]}},
        {"within": {"location": [113, 23, 114, 24, 25]}},
        {"within": {"location": [113, 23, 114, float("nan")]}},
        {"at_least": {"speed_kmh": float("inf")}},
        {"at_most": {"speed_kmh": float("nan")}},
        {"at_least": {"speed_kmh": "fast"}},
        {"equals": {"violation_type": []}},
        {"equals": {"violation_type": "red_light"}},
        {"equals": {"violation_type": [{"nested": 1}]}},
        {"equals": {"violation_type": [1.5]}},
        {"equals": {"lane": list(range(1001))}},
        {"equals": {"a": list(range(600)), "b": list(range(401))}},
        {"from": "2026-12-01T00:00:00"},  # no zone
        {"to": "2026-12-01T00:00:00"},
        {"from": "2026-12-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
        {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
        {"from": "yesterday"},
        {"near": {"location": [113, 23]}},
    ],
)
def test_an_invalid_filter_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FeedFilter.model_validate(bad)


def test_the_largest_valid_filter_is_accepted() -> None:
    made = FeedFilter.model_validate(
        {
            "equals": {"lane": list(range(1000))},
            "within": {"location": [-180, -90, 180, 90]},
            "from": "2026-12-01T00:00:00Z",
            "to": "2026-12-01T00:00:00.000001Z",
        }
    )
    assert len(made.equals["lane"]) == 1000


# --- backoff and Retry-After -------------------------------------------------------------------


class Bounds(random.Random):
    """A generator whose `uniform` says which range it was asked for."""

    def uniform(self, a: float, b: float) -> Any:
        return (a, b)


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (5, 8.0, 16.0), (10, 256.0, 512.0)],
)
def test_backoff_is_the_upper_half_of_a_doubling_ceiling(
    attempts: int, low: float, high: float
) -> None:
    assert backoff(attempts, 1.0, 600.0, Bounds()) == (low, high)


def test_backoff_is_capped() -> None:
    for attempts in (11, 12, 20, 100):
        assert backoff(attempts, 1.0, 600.0, Bounds()) == (300.0, 600.0)
    assert backoff(3, 0.05, 0.2, Bounds()) == (0.1, 0.2)


def test_backoff_stays_in_bounds_and_grows() -> None:
    rng = random.Random(6)
    for attempts in range(1, 40):
        ceiling = min(60.0, 0.5 * 2 ** (attempts - 1))
        for _ in range(20):
            delay = backoff(attempts, 0.5, 60.0, rng)
            assert ceiling / 2 <= delay <= ceiling
    firsts = [backoff(n, 1.0, 1e9, rng) for n in range(1, 12)]
    assert all(later >= earlier for earlier, later in itertools.pairwise(firsts))


NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Tue, 01 Dec 2026 12:01:30 GMT", 90.0),
        ("Tue, 01 Dec 2026 20:01:30 +0800", 90.0),
        ("Tue, 01 Dec 2026 11:00:00 GMT", 0.0),  # a date past is now
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value: str, seconds: float) -> None:
    assert retry_after(value, NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "-5", "1.5", "12s", "Tuesday"])
def test_retry_after_is_none_when_absent_or_garbage(value: str | None) -> None:
    assert retry_after(value, NOW) is None


@pytest.mark.parametrize("value", ["²", "1²"])
def test_retry_after_odd_digits_are_garbage(value: str) -> None:
    assert retry_after(value, NOW) is None
