"""Photo redaction against the codec alone, and the demo's generated photos.

- a plain decode and JPEG encode at quality 90 (4:2:0) of a 1920×1080 photo, the
  baseline: what re-saving costs whatever redaction adds
- `redact()` of the same photo with two 200×80 boxes (a plate and a face), and
  without boxes; `inspect()`, the full decode done at upload
- `connectors.fleet.photos.scene` at 640×360, which the demo calls thousands of times

Each figure is the median of interleaved rounds, so that a busy neighbour slows
the baseline and the measure alike.
"""

import io
import statistics
import time
from collections.abc import Callable

from PIL import Image

from connectors.fleet.photos import scene
from exchange.privacy.redaction import JPEG_QUALITY, Box, inspect, redact

SEED = 20261128
PLATE = "粤A·3K7Q2"
ROUNDS = 25
SCENES = 200
BOX_W, BOX_H = 200, 80


def _plain(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data))
    image.load()
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")
    return out.getvalue()


def _boxes(found: list[Box], width: int, height: int) -> list[Box]:
    """200×80 boxes centred where the scene put its plate and face, kept inside."""
    boxes = []
    for box in found:
        x = min(max(0, box.x + box.w // 2 - BOX_W // 2), width - BOX_W)
        y = min(max(0, box.y + box.h // 2 - BOX_H // 2), height - BOX_H)
        boxes.append(Box(box.kind, x, y, BOX_W, BOX_H))
    return boxes


def _medians_ms(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Each call's median time in ms, over `rounds` rounds of all calls in turn."""
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm up: caches, the font, the allocator
        call()
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) * 1000 for name, times in timings.items()}


def run() -> list[tuple[str, float, str]]:
    width, height = 1920, 1080
    print(f"redacting a {width}×{height} scene, {ROUNDS} rounds …", flush=True)
    data, found = scene(SEED, PLATE, width=width, height=height)
    boxes = _boxes(found, width, height)
    ms = _medians_ms(
        {
            "plain": lambda: _plain(data),
            "redact": lambda: redact(data, boxes),
            "bare": lambda: redact(data, []),
            "inspect": lambda: inspect(data),
        },
        ROUNDS,
    )
    print(f"drawing {SCENES} scenes at 640×360 …", flush=True)
    seeds = iter(range(SCENES + 1))
    drawn = _medians_ms({"scene": lambda: scene(next(seeds), PLATE)}, SCENES)["scene"]
    plain = ms["plain"]
    size = f"{width}×{height}, {len(data) // 1024} KiB"
    return [
        (f"plain decode + JPEG encode q{JPEG_QUALITY}, {size} (ms, baseline)", plain, "1.00"),
        (
            f"redact(), two {BOX_W}×{BOX_H} boxes, same photo (ms)",
            ms["redact"],
            f"{ms['redact'] / plain:.2f}x plain",
        ),
        (
            "redact(), no boxes: checks and bare re-encode (ms)",
            ms["bare"],
            f"{ms['bare'] / plain:.2f}x plain",
        ),
        (
            "inspect(), the full decode at upload (ms)",
            ms["inspect"],
            f"{ms['inspect'] / plain:.2f}x plain",
        ),
        (
            "demo scene, 640×360 JPEG (ms)",
            drawn,
            f"{1000 / drawn:,.0f} photos/s (target well under 10 ms)",
        ),
    ]
