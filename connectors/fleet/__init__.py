"""A robotaxi fleet in Guangzhou, simulated: where it drives, what it catches, photos.

    geography    real districts and roads (rough coordinates), flat geometry
    vehicles     robotaxis driving routes along those roads in simulated time
    simulation   `Fleet`: the vehicles catching violations as time passes, live
    captures     a backdated week of violations and near misses, for the demo
    plates       invented plates, standard and new-energy, with repeat offenders
    photos       drawn road scenes with a plate and a face, and their boxes
    history      backdated moments over the last week, by hour of day
    draws        the weighted choice every generator makes
    product      the violation-captures product definition, as plain JSON

Everything is synthetic and deterministic for a seed; nothing here talks to the
exchange (`connectors.simulator` publishes what the fleet catches).
"""

from connectors.fleet.captures import pedestrian_near_misses, violation_captures
from connectors.fleet.photos import Box, scene
from connectors.fleet.product import VIOLATION_CAPTURES
from connectors.fleet.simulation import Capture, Fleet
from connectors.fleet.vehicles import Vehicle

__all__ = [
    "VIOLATION_CAPTURES",
    "Box",
    "Capture",
    "Fleet",
    "Vehicle",
    "pedestrian_near_misses",
    "scene",
    "violation_captures",
]
