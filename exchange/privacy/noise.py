"""Counts that can be published: bounded contributions, Laplace noise, small groups dropped.

The mechanism, for a histogram of counts (one count per group):

1. **Bound each subject's contribution**: a vehicle seen a thousand times would
   otherwise dominate; each subject (the product's subject field, e.g. the
   plate; else each record) counts in at most `cap` records of the query, the
   first ones. Adding or removing one subject then changes the histogram by at
   most `cap` in total (L1 sensitivity `cap`).
2. **Add Laplace noise** of scale `cap / epsilon` to every count: the Laplace
   mechanism, epsilon-differentially private for that sensitivity. Samples come
   from the operating system's generator, by inverse CDF.
3. **Drop small groups** whose *noisy* count is below the threshold
   `max(k, cap + scale·ln(1/(2δ)))` (deciding on the true count would itself
   leak), and round what is published to whole numbers. The second term grows
   with the noise: a group that one subject alone makes up (true count ≤ cap)
   passes with probability at most δ, whatever the epsilon — so the release is
   (epsilon, δ)-differentially private, and small groups stay hidden.

Pure: the caller passes the rows and a random generator (tests pass a seeded one).
"""

import math
import random
from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

SYSTEM_RANDOM = random.SystemRandom()


def laplace(scale: float, rng: random.Random = SYSTEM_RANDOM) -> float:
    """One sample of Laplace(0, scale)."""
    if scale <= 0:
        raise ValueError("the Laplace scale must be positive")
    u = rng.random() - 0.5  # uniform on [-0.5, 0.5)
    while u == -0.5:  # log(0): draw again (probability 2^-53)
        u = rng.random() - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1 - 2 * abs(u))


def bounded(rows: Iterable[tuple[Hashable, Hashable]], cap: int) -> Counter[Hashable]:
    """Counts per group of `(subject, group)` rows, each subject counted in at most
    `cap` rows (its first ones)."""
    seen: Counter[Hashable] = Counter()
    counts: Counter[Hashable] = Counter()
    for subject, group in rows:
        if seen[subject] < cap:
            seen[subject] += 1
            counts[group] += 1
    return counts


@dataclass(frozen=True)
class Released:
    counts: dict[Hashable, int]
    scale: float
    threshold: float


def threshold(k: int, cap: int, scale: float, delta: float) -> float:
    """The noisy count a group needs to be published."""
    return max(float(k), cap + scale * math.log(1 / (2 * delta)))


def release(
    counts: Counter[Hashable],
    *,
    epsilon: float,
    cap: int,
    k: int,
    delta: float,
    rng: random.Random = SYSTEM_RANDOM,
) -> Released:
    """Noisy counts of the groups whose noisy count reaches the threshold, rounded."""
    if not epsilon > 0:
        raise ValueError("epsilon must be positive")
    if not 0 < delta < 0.5:
        raise ValueError("delta must be between 0 and 0.5")
    scale = cap / epsilon
    needed = threshold(k, cap, scale, delta)
    published = {}
    for group, count in counts.items():
        noisy = count + laplace(scale, rng)
        if noisy >= needed:
            published[group] = round(noisy)
    return Released(published, scale, needed)
