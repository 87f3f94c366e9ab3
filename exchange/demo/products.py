"""The three products of the day on the exchange, as their publishers register them.

The fleet's violation captures are defined once, as plain JSON, in
`connectors.fleet.product` (the simulator registers them over the API); here they
are checked with the exchange's own model like the other two.
"""

from connectors.fleet import product as fleet_product
from exchange.catalog.models import ProductCreate

VIOLATION_CAPTURES = ProductCreate.model_validate(fleet_product.VIOLATION_CAPTURES)

PEDESTRIAN_NEAR_MISSES = ProductCreate.model_validate(
    {
        "slug": "pedestrian-near-misses",
        "title": "Close calls with pedestrians and cyclists",
        "description": "Near misses detected by the fleet: precise places, distances, "
        "time to collision and photos. Regulated: companies need an approved grant.",
        "tags": ["traffic", "safety", "pedestrians", "guangzhou"],
        "tier": "regulated",
        "purposes": ["research", "traffic_management", "urban_planning", "law_enforcement"],
        "retention_days": 365,
        "fields": [
            # A pedestrian's precise time and place together are whereabouts: the
            # protected view shows the hour and the cell.
            {
                "name": "occurred_at",
                "type": "timestamp",
                "sensitivity": "location",
                "generalization": {"time_bucket": "hour"},
            },
            {"name": "location", "type": "geo_point", "sensitivity": "location"},
            {"name": "district", "type": "string"},
            {"name": "road", "type": "string"},
            {"name": "road_user", "type": "string"},
            {"name": "min_distance_m", "type": "number"},
            {
                "name": "vehicle_speed_kmh",
                "type": "number",
                "sensitivity": "personal",
                "generalization": {"bands": [0, 20, 30, 40, 50, 60, 80]},
            },
            {"name": "time_to_collision_s", "type": "number"},
            {"name": "vehicle_id", "type": "string"},
            {"name": "photo", "type": "image_ref", "sensitivity": "image"},
        ],
    }
)

HOTLINE_TICKETS = ProductCreate.model_validate(
    {
        "slug": "hotline-tickets",
        "title": "12345 hotline tickets about roads and traffic",
        "description": "Citizens' complaints to the city hotline: potholes, broken signals, "
        "blocked sidewalks. Government only.",
        "tags": ["hotline", "complaints", "guangzhou"],
        "tier": "government_only",
        "purposes": ["law_enforcement", "traffic_management", "urban_planning"],
        "retention_days": 730,
        "fields": [
            {"name": "received_at", "type": "timestamp"},
            {"name": "district", "type": "string"},
            {"name": "category", "type": "string"},
            {"name": "description", "type": "string", "sensitivity": "sensitive"},
            {"name": "caller_phone", "type": "string", "sensitivity": "personal"},
            {"name": "location", "type": "geo_point", "sensitivity": "location"},
            {"name": "status", "type": "string"},
        ],
    }
)
