"""Reading responses in tests: a success's JSON body, or a problem of one type."""

from typing import Any

PROBLEM = "application/problem+json"


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["type"]) == (status, f"urn:exchange:problem:{code}"), body
    return body
