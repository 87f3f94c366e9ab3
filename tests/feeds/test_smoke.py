from tests.feeds.receiver import receiving
from tests.products import capture, captures_product


def test_webhook_arrives_signed(exchange):
    exchange.register("fleet", captures_product())
    with receiving() as receiver:
        response = exchange.post(
            "police",
            "/v1/subscriptions",
            json={
                "product": "violation-captures",
                "purpose": "law_enforcement",
                "delivery": "webhook",
                "url": receiver.url,
                "filter": {"equals": {"violation_type": ["red_light"]}},
            },
        )
        assert response.status_code == 201, response.text
        receiver.secret = response.json()["secret"]
        assert (
            exchange.publish(
                "fleet", "violation-captures", [capture(n) for n in range(1, 7)]
            ).status_code
            == 200
        )
        events = receiver.wait_for(3)
        assert [e["record"]["id"] for e in events] == ["cap-000001", "cap-000003", "cap-000005"]
        sid = response.json()["id"]
        body = exchange.get("police", f"/v1/subscriptions/{sid}").json()
        print(body)
        print(exchange.get("police", f"/v1/subscriptions/{sid}/deliveries").json())
