"""The products of the day on the exchange, as their publishers register them.

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
        "subject_field": "caller_phone",
        "subject_kind": "phone",
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

# The hotline's reports of illegally parked vehicles name the plate, as the fleet's
# captures do: linkage by plate finds a vehicle in both.
ILLEGAL_PARKING_REPORTS = ProductCreate.model_validate(
    {
        "slug": "illegal-parking-reports",
        "title": "12345 hotline reports of illegally parked vehicles",
        "description": "Citizens reporting a vehicle blocking a lane, a fire lane or a "
        "driveway, by plate. Government only.",
        "tags": ["hotline", "parking", "guangzhou"],
        "tier": "government_only",
        "purposes": ["law_enforcement", "traffic_management"],
        "retention_days": 365,
        "subject_field": "plate",
        "subject_kind": "plate",
        "fields": [
            {"name": "reported_at", "type": "timestamp"},
            {"name": "district", "type": "string"},
            {"name": "road", "type": "string"},
            {"name": "plate", "type": "string", "sensitivity": "personal"},
            {"name": "description", "type": "string", "sensitivity": "sensitive"},
            {"name": "caller_phone", "type": "string", "sensitivity": "personal"},
            {"name": "location", "type": "geo_point", "sensitivity": "location"},
            {"name": "status", "type": "string"},
        ],
    }
)

BUSINESS_REGISTRATIONS = ProductCreate.model_validate(
    {
        "slug": "business-registrations",
        "title": "Business registry: companies and their registered addresses",
        "description": "Every company registered in the city, with its registered address "
        "as the registry writes it. Government only.",
        "tags": ["registry", "companies", "guangzhou"],
        "tier": "government_only",
        "purposes": ["registry_reconciliation", "law_enforcement", "urban_planning"],
        "retention_days": 3650,
        "subject_field": "registered_address",
        "subject_kind": "address",
        "fields": [
            {"name": "registration_no", "type": "string"},
            {"name": "company_name", "type": "string"},
            {"name": "registered_address", "type": "string"},
            {"name": "district", "type": "string"},
            {"name": "business_type", "type": "string"},
            {"name": "registered_on", "type": "timestamp"},
            {"name": "legal_representative", "type": "string", "sensitivity": "personal"},
        ],
    }
)

RESIDENTIAL_ADDRESSES = ProductCreate.model_validate(
    {
        "slug": "residential-addresses",
        "title": "Housing registry: homes and their addresses",
        "description": "Every registered home, by estate and building, as the housing "
        "bureau writes its address. Government only.",
        "tags": ["registry", "housing", "guangzhou"],
        "tier": "government_only",
        "purposes": ["registry_reconciliation", "housing_management", "urban_planning"],
        "retention_days": 3650,
        "subject_field": "address",
        "subject_kind": "address",
        "fields": [
            {"name": "address", "type": "string", "sensitivity": "personal"},
            {"name": "estate", "type": "string"},
            {"name": "building", "type": "string"},
            {"name": "district", "type": "string"},
            {"name": "registered_at", "type": "timestamp"},
            {"name": "household_size", "type": "integer", "sensitivity": "personal"},
        ],
    }
)
