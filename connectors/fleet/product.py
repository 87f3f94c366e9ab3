"""The violation-captures product as its publisher, the fleet, registers it.

Plain JSON for `POST /v1/products`; the exchange checks it on registration (and the
demo validates it with the exchange's own model, so this is the one definition).
"""

from typing import Any

VIOLATION_CAPTURES: dict[str, Any] = {
    "slug": "violation-captures",
    "title": "Traffic violation captures from robotaxi cameras",
    "description": "Red-light running, bus-lane use, illegal parking and more, seen by a "
    "robotaxi fleet's cameras in Guangzhou: time, place, road, type, plate, speed, photo.",
    "tags": ["traffic", "violations", "guangzhou", "camera"],
    "tier": "open",
    "purposes": [
        "law_enforcement",
        "traffic_management",
        "navigation_safety",
        "urban_planning",
        "research",
    ],
    "retention_days": 180,
    "subject_field": "plate",
    "subject_kind": "plate",
    "fields": [
        {"name": "captured_at", "type": "timestamp"},
        {"name": "location", "type": "geo_point", "sensitivity": "location"},
        {"name": "district", "type": "string"},
        {"name": "road", "type": "string"},
        {"name": "violation_type", "type": "string"},
        {"name": "plate", "type": "string", "sensitivity": "personal"},
        {"name": "speed_kmh", "type": "number"},
        {"name": "speed_limit_kmh", "type": "integer"},
        {"name": "confidence", "type": "number"},
        {"name": "vehicle_id", "type": "string"},
        {"name": "photo", "type": "image_ref", "sensitivity": "image"},
    ],
}
