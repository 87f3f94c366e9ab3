"""Product definitions and records the tests publish (small and hand-made)."""

from typing import Any


def captures_product(
    slug: str = "violation-captures", tier: str = "open", **changes: Any
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "slug": slug,
        "title": "Violation captures",
        "description": "Robotaxi camera captures of traffic violations",
        "tags": ["traffic", "camera"],
        "tier": tier,
        "purposes": ["law_enforcement", "traffic_management", "navigation_safety", "research"],
        "retention_days": 90,
        "fields": [
            {"name": "captured_at", "type": "timestamp"},
            {"name": "location", "type": "geo_point", "sensitivity": "location"},
            {"name": "violation_type", "type": "string"},
            {"name": "plate", "type": "string", "sensitivity": "personal"},
            {"name": "speed_kmh", "type": "number"},
            {"name": "lane", "type": "integer", "required": False},
            {"name": "night", "type": "boolean", "required": False},
            {
                "name": "driver_note",
                "type": "string",
                "sensitivity": "sensitive",
                "required": False,
            },
            {"name": "photo", "type": "image_ref", "sensitivity": "image"},
        ],
    }
    definition.update(changes)
    return definition


def capture(n: int, **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"cap-{n:06d}",
        "captured_at": f"2026-11-2{n % 7}T08:{n % 60:02d}:00Z",
        "location": {"lat": 23.1246 + n * 1e-5, "lon": 113.3612},
        "violation_type": "red_light" if n % 2 else "bus_lane",
        "plate": f"粤A·{10000 + n % 90000}",
        "speed_kmh": 42.5,
        "photo": f"captures/cap-{n:06d}.jpg",
    }
    record.update(changes)
    return record
