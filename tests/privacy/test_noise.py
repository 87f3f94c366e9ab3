"""The noise mechanism behind aggregates: the Laplace sampler's distribution, bounded
contributions, and the release (noise, small groups dropped, rounding). Pure; every
generator is a seeded `random.Random`, so each check is deterministic, and each
tolerance is several standard errors wide so that it holds for any seed."""

import inspect
import math
import random
import statistics
from collections import Counter
from collections.abc import Hashable, Mapping

import pytest

from exchange.privacy.noise import bounded, laplace, release

SAMPLES = 200_000
SCALE = 2.5


@pytest.fixture(scope="module")
def samples() -> list[float]:
    """200,000 draws of Laplace(0, 2.5), sorted."""
    rng = random.Random(20261120)
    return sorted(laplace(SCALE, rng) for _ in range(SAMPLES))


def laplace_cdf(x: float, scale: float) -> float:
    if x < 0:
        return 0.5 * math.exp(x / scale)
    return 1 - 0.5 * math.exp(-x / scale)


def ks_distance(ordered: list[float], scale: float) -> float:
    """The Kolmogorov–Smirnov statistic: the largest distance between the empirical
    CDF of the sorted sample and the Laplace(0, scale) CDF."""
    n = len(ordered)
    distance = 0.0
    for i, x in enumerate(ordered):
        f = laplace_cdf(x, scale)
        distance = max(distance, (i + 1) / n - f, f - i / n)
    return distance


# --- laplace ------------------------------------------------------------------------------------


def test_laplace_mean_is_zero(samples: list[float]) -> None:
    # standard error of the mean: sqrt(2)·b/sqrt(n) ≈ 0.0079 for b = 2.5; 6 of them
    assert abs(statistics.fmean(samples)) < 6 * math.sqrt(2) * SCALE / math.sqrt(SAMPLES)


def test_laplace_variance_is_twice_the_scale_squared(samples: list[float]) -> None:
    # Var(sample variance) ≈ (mu4 - sigma^4)/n = (24 b^4 - 4 b^4)/n: 0.5 % of 2b² per error
    variance = statistics.pvariance(samples, mu=0.0)
    standard_error = math.sqrt(20 / SAMPLES) * SCALE**2
    assert abs(variance - 2 * SCALE**2) < 6 * standard_error
    assert abs(variance / (2 * SCALE**2) - 1) < 0.03


def test_laplace_median_absolute_value_is_scale_ln2(samples: list[float]) -> None:
    # |X| is exponential with mean b: median b·ln 2, its standard error b/sqrt(n)
    median = statistics.median(abs(x) for x in samples)
    assert abs(median - SCALE * math.log(2)) < 6 * SCALE / math.sqrt(SAMPLES)


def test_laplace_is_symmetric(samples: list[float]) -> None:
    positive = sum(x > 0 for x in samples) / SAMPLES
    assert abs(positive - 0.5) < 6 * 0.5 / math.sqrt(SAMPLES)
    # and the tails agree: as many beyond +3b as below -3b (each e^-3 / 2 ≈ 2.5 %)
    above = sum(x > 3 * SCALE for x in samples) / SAMPLES
    below = sum(x < -3 * SCALE for x in samples) / SAMPLES
    assert abs(above - 0.5 * math.exp(-3)) < 0.002
    assert abs(below - 0.5 * math.exp(-3)) < 0.002


def test_laplace_matches_its_cdf_kolmogorov_smirnov(samples: list[float]) -> None:
    # the KS critical value at alpha = 0.001 is 1.95/sqrt(n) ≈ 0.0044
    bound = 1.95 / math.sqrt(SAMPLES)
    assert ks_distance(samples, SCALE) < bound
    # the check has power: the same sample is far from a Laplace 10 % wider or narrower
    assert ks_distance(samples, SCALE * 1.1) > 3 * bound
    assert ks_distance(samples, SCALE / 1.1) > 3 * bound


def test_laplace_scales_linearly_with_the_same_stream() -> None:
    first, second = random.Random(77), random.Random(77)
    for _ in range(1000):
        assert laplace(3.7, first) == pytest.approx(3.7 * laplace(1.0, second), rel=1e-12)


def test_laplace_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    draw = [laplace(1.0, random.Random(3)) for _ in range(3)]
    assert len(set(draw)) == 1
    stream = random.Random(3)
    values = [laplace(1.0, stream) for _ in range(50)]
    assert len(set(values)) == 50
    assert values != [laplace(1.0, random.Random(4)) for _ in range(50)]


@pytest.mark.parametrize("scale", [0.0, -1.0, -1e-12])
def test_laplace_refuses_a_scale_that_is_not_positive(scale: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        laplace(scale, random.Random(1))


def test_laplace_defaults_to_the_operating_systems_generator() -> None:
    default = inspect.signature(laplace).parameters["rng"].default
    assert isinstance(default, random.SystemRandom)
    assert inspect.signature(release).parameters["rng"].default is default


class _Fixed(random.Random):
    """A generator whose `random()` returns given values in turn."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def test_laplace_inverse_cdf_at_known_points() -> None:
    # u = r - 0.5; x = -b·sign(u)·ln(1 - 2|u|)
    assert laplace(2.0, _Fixed(0.5)) == 0.0
    assert laplace(2.0, _Fixed(0.75)) == pytest.approx(2.0 * math.log(2))
    assert laplace(2.0, _Fixed(0.25)) == pytest.approx(-2.0 * math.log(2))
    assert laplace(1.0, _Fixed(1 - 2**-53)) == pytest.approx(math.log(2**52))


def test_laplace_survives_a_generator_returning_zero() -> None:
    # log(0) would fail: the sampler draws again, and uses the next value
    assert laplace(2.0, _Fixed(0.0, 0.75)) == pytest.approx(2.0 * math.log(2))


# --- bounded ------------------------------------------------------------------------------------


def test_bounded_counts_a_frequent_subject_at_most_cap_times_its_first_rows() -> None:
    groups = ["north", "south", "east", "west"]
    rows = [("粤A·10001", groups[i % 4]) for i in range(1000)]
    counts = bounded(rows, cap=5)
    # the first five rows: north, south, east, west, north
    assert counts == Counter({"north": 2, "south": 1, "east": 1, "west": 1})
    assert sum(counts.values()) == 5


def test_bounded_uses_the_first_rows_not_the_most_common_group() -> None:
    rows = [("car", "rare")] * 2 + [("car", "common")] * 998
    assert bounded(rows, cap=3) == Counter({"rare": 2, "common": 1})


def test_bounded_counts_every_distinct_subject() -> None:
    rows = [(f"粤A·{10000 + i}", "red_light" if i % 3 else "bus_lane") for i in range(1000)]
    counts = bounded(rows, cap=1)
    assert counts == Counter({"red_light": 666, "bus_lane": 334})


def test_bounded_caps_each_subject_separately_when_interleaved() -> None:
    subjects = ["a", "b", "c"]
    rows = [(subjects[i % 3], f"day-{i % 2}") for i in range(300)]
    counts = bounded(rows, cap=4)
    assert sum(counts.values()) == 12
    # a's first four rows are i = 0, 3, 6, 9 (days 0, 1, 0, 1), and so on for b and c
    assert counts == Counter({"day-0": 6, "day-1": 6})


def test_bounded_mixes_capped_and_uncapped_subjects() -> None:
    rows: list[tuple[Hashable, Hashable]] = []
    rows += [("repeat", "speeding")] * 40
    rows += [(("record", n), "speeding") for n in range(7)]
    rows += [(f"p{n}", "red_light") for n in range(12)]
    assert bounded(rows, cap=5) == Counter({"speeding": 12, "red_light": 12})


def test_bounded_of_nothing_is_empty() -> None:
    assert bounded([], cap=5) == Counter()


def histogram(counts: Mapping[Hashable, int]) -> Counter[Hashable]:
    return Counter(counts)


DELTA = 1e-6  # settings.aggregate_delta


# --- release ------------------------------------------------------------------------------------


def test_release_publishes_large_groups_exactly_when_epsilon_is_large() -> None:
    counts = histogram({"red_light": 1000, "bus_lane": 5000, "speeding": 250})
    # scale 5/1000 = 0.005: |noise| < 0.5 except with probability e^-100
    released = release(counts, epsilon=1000.0, cap=5, k=10, delta=DELTA, rng=random.Random(1))
    assert released.counts == dict(counts)


def test_release_publishes_large_groups_near_the_truth() -> None:
    counts = histogram({("h3:88411c", "red_light"): 400, ("h3:88411c", "bus_lane"): 150})
    rng = random.Random(2)
    for _ in range(500):
        released = release(counts, epsilon=1.0, cap=5, k=10, delta=DELTA, rng=rng)
        assert released.counts.keys() == counts.keys()
        for group, count in released.counts.items():
            # scale 5: beyond 12 scales with probability e^-12 per count
            assert abs(count - counts[group]) <= 12 * 5 + 1


def test_release_never_publishes_groups_far_below_k() -> None:
    counts = histogram({"wrong_way": 2, "u_turn": 1, "nothing": 0, "red_light": 500})
    rng = random.Random(3)
    for _ in range(2000):
        # scale 1/2: a count of 2 reaches 10 with probability e^-16 / 2
        released = release(counts, epsilon=2.0, cap=1, k=10, delta=DELTA, rng=rng)
        assert set(released.counts) == {"red_light"}


def test_release_thresholds_on_the_noisy_count_not_the_true_one() -> None:
    counts = histogram({"at_k": 10, "below_k": 9})
    rng = random.Random(4)
    trials = 4000
    published: Counter[Hashable] = Counter()
    for _ in range(trials):
        # a large delta keeps the threshold at k itself: cap + ln(1/0.8) < k
        released = release(counts, epsilon=5.0, cap=5, k=10, delta=0.4, rng=rng)
        published.update(released.counts.keys())
        assert all(count >= 10 for count in released.counts.values())
    # scale 1: a count of k passes half the time, k - 1 with probability e^-1 / 2 ≈ 0.18
    assert abs(published["at_k"] / trials - 0.5) < 0.04
    assert abs(published["below_k"] / trials - 0.5 * math.exp(-1)) < 0.03


def test_release_rounds_to_whole_numbers() -> None:
    counts = histogram({f"g{i}": 1000 + i for i in range(50)})
    released = release(counts, epsilon=0.5, cap=5, k=10, delta=DELTA, rng=random.Random(5))
    assert released.counts
    assert all(type(count) is int for count in released.counts.values())
    # and the noise really was added: not every count is its truth
    assert any(released.counts[g] != counts[g] for g in released.counts)


def test_release_noise_is_unbiased() -> None:
    counts = histogram({"big": 1000})
    rng = random.Random(6)
    errors = [
        release(counts, epsilon=1.0, cap=5, k=10, delta=DELTA, rng=rng).counts["big"] - 1000
        for _ in range(20_000)
    ]
    # standard deviation sqrt(2)·5 ≈ 7.1 (rounding adds 1/12); standard error ≈ 0.05
    assert abs(statistics.fmean(errors)) < 0.3
    assert statistics.pstdev(errors) == pytest.approx(math.sqrt(2) * 5, rel=0.05)


@pytest.mark.parametrize("epsilon", [0.0, -0.5, -10.0])
def test_release_refuses_an_epsilon_that_is_not_positive(epsilon: float) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        release(
            histogram({"a": 100}), epsilon=epsilon, cap=5, k=10, delta=DELTA, rng=random.Random(7)
        )


def test_release_is_deterministic_for_a_seed() -> None:
    counts = histogram({f"cell-{i}": 130 + i for i in range(30)})
    first = release(counts, epsilon=0.7, cap=5, k=10, delta=DELTA, rng=random.Random(8))
    again = release(counts, epsilon=0.7, cap=5, k=10, delta=DELTA, rng=random.Random(8))
    other = release(counts, epsilon=0.7, cap=5, k=10, delta=DELTA, rng=random.Random(9))
    assert first == again
    assert first.counts != other.counts


@pytest.mark.parametrize(
    ("cap", "epsilon", "scale"), [(5, 5.0, 1.0), (5, 1.0, 5.0), (5, 0.5, 10.0), (1, 2.0, 0.5)]
)
def test_release_reports_the_noise_scale_cap_over_epsilon(
    cap: int, epsilon: float, scale: float
) -> None:
    released = release(
        histogram({"a": 50}), epsilon=epsilon, cap=cap, k=10, delta=DELTA, rng=random.Random(10)
    )
    assert released.scale == pytest.approx(scale)
    empty = release(Counter(), epsilon=epsilon, cap=cap, k=10, delta=DELTA, rng=random.Random(10))
    assert empty.counts == {}
    assert empty.scale == pytest.approx(scale)


def test_release_leaves_its_input_alone() -> None:
    counts = histogram({"a": 50, "b": 3})
    release(counts, epsilon=1.0, cap=5, k=10, delta=DELTA, rng=random.Random(11))
    assert counts == Counter({"a": 50, "b": 3})


def test_a_group_of_one_subject_stays_hidden_at_any_allowed_epsilon() -> None:
    rng = random.Random(12)
    trials = 2000
    shown = sum(
        "one_vehicle"
        in release(
            histogram({"one_vehicle": 2}), epsilon=0.5, cap=5, k=10, delta=DELTA, rng=rng
        ).counts
        for _ in range(trials)
    )
    assert shown / trials < 0.001
