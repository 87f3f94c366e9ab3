"""The server-side SVG bar chart: well-formed SVG whose bars, totals, labels and
tooltips say exactly the numbers given, with every name escaped."""

import itertools
import xml.etree.ElementTree as ET

import pytest

from exchange.console.charts import PLOT_HEIGHT, Series, nice_ceiling, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"
DAYS = ["2026-11-27", "2026-11-28", "2026-11-29"]


def _svg(markup: str) -> ET.Element:
    root = ET.fromstring(markup)  # raises if not well-formed
    assert root.tag == f"{SVG}svg"
    return root


def _segments(root: ET.Element) -> list[ET.Element]:
    return [rect for bar in _bars(root) for rect in bar.findall(f"{SVG}rect")]


def _bars(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]


def _texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == cls]


def _two_series() -> list[Series]:
    return [
        Series("gz-traffic-police", [3, 0, 1], "#0072b2"),
        Series("lingnan-maps", [1, 2, 0], "#e69f00"),
    ]


def test_each_day_is_a_stack_of_its_series_with_the_total_above() -> None:
    root = _svg(stacked_bars("chart-x", "Accesses", DAYS, _two_series()))
    assert root.get("id") == "chart-x"
    assert root.get("class") == "chart"
    bars = _bars(root)
    assert [g.get("data-total") for g in bars] == ["4", "2", "1"]
    assert _texts(root, "total") == ["4", "2", "1"]
    assert _texts(root, "tick") == DAYS
    stacks = [
        [(rect.get("data-series"), rect.get("data-value")) for rect in bar.findall(f"{SVG}rect")]
        for bar in bars
    ]
    # zero segments are not drawn; each stack is in series order, bottom up
    assert stacks == [
        [("gz-traffic-police", "3"), ("lingnan-maps", "1")],
        [("lingnan-maps", "2")],
        [("gz-traffic-police", "1")],
    ]


def test_heights_are_proportional_and_stacks_touch() -> None:
    root = _svg(stacked_bars("c", "t", DAYS, _two_series()))
    maximum, _ = nice_ceiling(4)
    for bar in _bars(root):
        rects = bar.findall(f"{SVG}rect")
        for rect in rects:
            height = float(rect.get("height", "0"))
            expected = int(rect.get("data-value", "0")) * PLOT_HEIGHT / maximum
            assert height == pytest.approx(expected, abs=0.11)
        for lower, upper in itertools.pairwise(rects):
            top_of_lower = float(lower.get("y", "0"))
            bottom_of_upper = float(upper.get("y", "0")) + float(upper.get("height", "0"))
            assert bottom_of_upper == pytest.approx(top_of_lower, abs=0.11)


def test_every_segment_has_a_tooltip_with_day_name_and_number() -> None:
    root = _svg(stacked_bars("c", "t", DAYS, _two_series()))
    tips = [rect.find(f"{SVG}title").text for rect in _segments(root)]  # type: ignore[union-attr]
    assert tips == [
        "2026-11-27 · gz-traffic-police: 3",
        "2026-11-27 · lingnan-maps: 1",
        "2026-11-28 · lingnan-maps: 2",
        "2026-11-29 · gz-traffic-police: 1",
    ]


def test_the_legend_names_every_series_in_its_colour() -> None:
    root = _svg(stacked_bars("c", "t", DAYS, _two_series()))
    items = [g for g in root.iter(f"{SVG}g") if g.get("class") == "legend-item"]
    legend = [(g.find(f"{SVG}text").text, g.find(f"{SVG}rect").get("fill")) for g in items]  # type: ignore[union-attr]
    assert legend == [("gz-traffic-police", "#0072b2"), ("lingnan-maps", "#e69f00")]


def test_the_chart_has_a_title_for_screen_readers() -> None:
    root = _svg(stacked_bars("chart-by-x", "Accesses per day", DAYS, _two_series()))
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "Accesses per day"
    assert root.get("aria-labelledby") == title.get("id") == "chart-by-x-title"
    assert root.get("role") == "img"


def test_ticks_can_be_shorter_than_the_labels_and_thin_out_when_many() -> None:
    days = [f"2026-11-{d:02d}" for d in range(1, 31)]
    root = _svg(
        stacked_bars(
            "c", "t", days, [Series("a", [1] * 30, "#000000")], ticks=[d[5:] for d in days]
        )
    )
    shown = _texts(root, "tick")
    assert shown == [d[5:] for d in days][::2]
    assert len(_segments(root)) == 30


def test_names_and_titles_are_escaped() -> None:
    evil = '<script>alert("x")</script> & "quoted"'
    markup = stacked_bars(
        'c"><script>', evil, ["<b>day</b>"], [Series(evil, [2], "#123456")], empty=evil
    )
    assert "<script>" not in markup and "<b>" not in markup
    root = _svg(markup)
    assert root.get("id") == 'c"><script>'
    assert root.find(f"{SVG}title").text == evil  # type: ignore[union-attr]
    (rect,) = _segments(root)
    assert rect.get("data-series") == evil
    assert rect.find(f"{SVG}title").text == f"<b>day</b> · {evil}: 2"  # type: ignore[union-attr]


@pytest.mark.parametrize("colour", ["red", "#12345", "#1234567", '#123456" onload="x', "url(#a)"])
def test_a_colour_must_be_hex(colour: str) -> None:
    with pytest.raises(ValueError, match="colour"):
        stacked_bars("c", "t", DAYS, [Series("a", [1, 2, 3], colour)])


@pytest.mark.parametrize(
    ("values", "problem"), [([1, 2], "values"), ([1, 2, 3, 4], "values"), ([1, -1, 0], "negative")]
)
def test_values_must_fit_the_labels(values: list[int], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        stacked_bars("c", "t", DAYS, [Series("a", values, "#000000")])


def test_ticks_must_fit_the_labels() -> None:
    with pytest.raises(ValueError, match="tick"):
        stacked_bars("c", "t", DAYS, [Series("a", [1, 2, 3], "#000000")], ticks=["x"])


@pytest.mark.parametrize(
    ("labels", "series"),
    [
        ([], []),
        (DAYS, []),
        (DAYS, [Series("a", [0, 0, 0], "#000000")]),
    ],
    ids=["no-days", "no-series", "all-zero"],
)
def test_empty_data_says_so_and_draws_no_bars(labels: list[str], series: list[Series]) -> None:
    root = _svg(stacked_bars("c", "t", labels, series, empty="No accesses in this window"))
    assert _segments(root) == []
    assert list(root.iter(f"{SVG}rect")) == []
    assert _texts(root, "empty") == ["No accesses in this window"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, (1, 1)),
        (1, (1, 1)),
        (4, (4, 1)),
        (5, (5, 1)),
        (6, (6, 2)),
        (11, (15, 5)),
        (99, (100, 20)),
    ],
)
def test_the_axis_ends_at_a_round_number(value: int, expected: tuple[int, int]) -> None:
    assert nice_ceiling(value) == expected


def test_the_axis_labels_its_ticks() -> None:
    root = _svg(stacked_bars("c", "t", DAYS, _two_series()))
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert axis == ["0", "1", "2", "3", "4"]
