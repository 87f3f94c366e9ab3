"""The one kind of draw every generator makes: a key chosen by relative weight.

Generators take their own `random.Random`, never the global one, so that the same
seed always gives the same records.
"""

import random


def weighted(rng: random.Random, weights: dict[str, int]) -> str:
    """A key of `weights`, chosen with probability proportional to its value."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]
