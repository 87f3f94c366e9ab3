"""`exchange subscribe`: a feed started from the command line."""

import json

from typer.testing import CliRunner, Result

from exchange.cli import app
from tests.connectors.conftest import Live
from tests.products import captures_product


def _subscribe(live: Live, who: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["subscribe", *args], env=live.environment(who))


def test_a_pull_subscription_with_a_filter(live: Live) -> None:
    live.exchange.register("fleet", captures_product())
    wanted = {"equals": {"violation_type": ["red_light"]}}
    result = _subscribe(
        live,
        "police",
        "violation-captures",
        "--purpose",
        "law_enforcement",
        "--filter",
        json.dumps(wanted),
        "--field",
        "plate",
        "--field",
        "captured_at",
    )
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert (made["delivery"], made["filter"], made["secret"]) == ("pull", wanted, None)
    assert made["fields"] == ["plate", "captured_at"]
    listed = live.exchange.get("police", "/v1/subscriptions").json()["subscriptions"]
    assert [s["id"] for s in listed] == [made["id"]]


def test_refusals_are_messages_with_what_to_do(live: Live) -> None:
    live.exchange.register("fleet", captures_product(tier="regulated"))
    denied = _subscribe(live, "mapco", "violation-captures", "--purpose", "research")
    assert denied.exit_code == 1
    assert "403" in denied.output and "hint:" in denied.output
    private = _subscribe(
        live,
        "police",
        "violation-captures",
        "--purpose",
        "law_enforcement",
        "--webhook",
        "https://127.0.0.1/hook",
    )
    assert private.exit_code == 1 and "url" in private.output
    bad = _subscribe(
        live, "police", "violation-captures", "--purpose", "law_enforcement", "--filter", "{"
    )
    assert bad.exit_code == 2 and "not JSON" in bad.output
    assert live.exchange.get("police", "/v1/subscriptions").json()["subscriptions"] == []
