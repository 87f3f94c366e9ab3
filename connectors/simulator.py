"""`exchange simulate`: a robotaxi fleet publishing its violation captures, live.

The fleet (`connectors.fleet.Fleet`) starts now and keeps pace with the clock: at
the end of each second it publishes that second's captures through the SDK, in
requests of at most `--batch` records (`atomic=false`), then uploads each published
record's photo, whose plate and face boxes are in the record's `photo` field. A
record's `captured_at` is the moment of its capture, never later than the moment it
is sent. If the exchange is slower than the fleet, the run falls behind and catches
up as it can; the captures keep their own times.

`--duration` is seconds (`90`, `2.5`) or a number with a unit: `30s`, `5m`, `1.5h`.
`--rate` is violations a second across the fleet, on average; over the run the
count is `rate × duration` (rounded down). Without `--no-register`, a product that
does not exist is registered with the fleet's definition under the slug given.

A record the exchange rejects, or a photo it refuses, is printed and counted; the
run goes on. Exit status: 0 when the run completed; 1 when it could not go on (the
exchange refused the product or could not be reached, or the product is missing
and `--no-register` was given); 2 for a usage or configuration error; 130 when
interrupted (after the summary of what was done).
"""

import math
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from connectors.client import ExchangeClient
from connectors.config import (
    ClientIdOption,
    ClientSecretOption,
    ProfileOption,
    UrlOption,
    client_from,
    fail,
)
from connectors.errors import (
    IMAGE_REFUSALS,
    ConnectionFailed,
    Denied,
    ExchangeError,
    NotFound,
    PayloadTooLarge,
)
from connectors.fleet import VIOLATION_CAPTURES, Capture, Fleet
from connectors.fleet.simulation import MAX_VEHICLES

PHOTO_UPLOADS = 4
"""Photos uploaded at once (the client is thread-safe)."""

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """Seconds from `90`, `2.5`, `30s`, `5m` or `1.5h`; raises `ValueError` for anything
    else, or for no time at all."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: give seconds (90) or 30s, 5m, 1.5h")
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise ValueError("the duration must be more than 0 seconds")
    return seconds


@dataclass
class Tally:
    """What a run did so far."""

    published: int = 0
    unchanged: int = 0
    rejected: int = 0
    photos: int = 0
    photos_refused: int = 0
    simulated: float = 0.0
    elapsed: float = 0.0

    @property
    def records_per_second(self) -> float:
        return self.published / self.elapsed if self.elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        return [
            f"records published {self.published}, unchanged {self.unchanged}, "
            f"rejected {self.rejected}",
            f"photos uploaded {self.photos}, refused {self.photos_refused}",
            f"elapsed {self.elapsed:.1f} s, {self.records_per_second:.1f} records/s",
        ]


def ensure_product(client: ExchangeClient, slug: str, *, register: bool) -> bool:
    """Whether the product had to be registered (with the fleet's definition under
    `slug`). Raises `NotFound` if it is missing and `register` is false, and the SDK's
    errors for a refused registration."""
    try:
        client.product(slug)
    except NotFound:
        if not register:
            raise
        client.register_product(VIOLATION_CAPTURES | {"slug": slug})
        return True
    return False


class Simulator:
    """Publishes what a fleet catches, second by second, as the seconds pass."""

    def __init__(
        self,
        client: ExchangeClient,
        product: str,
        fleet: Fleet,
        *,
        rate: float,
        batch: int,
        note: Callable[[str], None],
        on_second: Callable[[Tally], None] = lambda tally: None,
    ) -> None:
        self.client = client
        self.product = product
        self.fleet = fleet
        self.rate = rate
        self.batch = batch
        self.note = note
        self.on_second = on_second
        self.tally = Tally()

    def run(self, seconds: float) -> Tally:
        """Run for `seconds` of wall-clock time from now (the fleet's start). Raises
        the SDK's errors for anything but a rejected record or a refused photo; the
        tally keeps what was done."""
        began = time.monotonic()
        try:
            with ThreadPoolExecutor(PHOTO_UPLOADS, thread_name_prefix="photo") as uploads:
                while self.fleet.elapsed_s < seconds:
                    step = min(1.0, seconds - self.fleet.elapsed_s)
                    pause = began + self.fleet.elapsed_s + step - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    caught = self.fleet.captures(step, self.rate)
                    for start in range(0, len(caught), self.batch):
                        self._publish(caught[start : start + self.batch], uploads)
                    self.tally.simulated = self.fleet.elapsed_s
                    self.tally.elapsed = time.monotonic() - began
                    self.on_second(self.tally)
        finally:
            self.tally.elapsed = time.monotonic() - began
        return self.tally

    def _publish(self, captures: list[Capture], uploads: ThreadPoolExecutor) -> None:
        outcome = self.client.publish(
            self.product, [capture.record for capture in captures], atomic=False
        )
        self.tally.published += outcome.accepted
        self.tally.unchanged += outcome.unchanged
        self.tally.rejected += len(outcome.rejected)
        refused = set()
        for problem in outcome.rejected:
            index = problem.get("index")
            if isinstance(index, int) and 0 <= index < len(captures):
                refused.add(index)
                record_id = captures[index].record["id"]
            else:
                record_id = "a record"
            where = f"{problem['field']}: " if problem.get("field") else ""
            self.note(f"rejected {record_id}: {where}{problem.get('reason', '')}")
        photographed = [
            capture
            for index, capture in enumerate(captures)
            if index not in refused and capture.photo is not None
        ]
        for refusal in uploads.map(self._upload, photographed):
            if refusal is None:
                self.tally.photos += 1
            else:
                self.tally.photos_refused += 1
                self.note(refusal)

    def _upload(self, capture: Capture) -> str | None:
        """Upload the capture's photo; what the exchange said if it refused it."""
        assert capture.photo is not None
        record_id = str(capture.record["id"])
        try:
            self.client.put_image(self.product, record_id, capture.photo)
        except IMAGE_REFUSALS as error:
            reasons = "; ".join(problem.reason for problem in error.errors)
            return f"photo of {record_id} refused: {error.detail}" + (
                f" ({reasons})" if reasons else ""
            )
        return None


class _Display:
    """On stderr: a live progress line on a terminal; elsewhere (a log, CI) a plain
    line every EVERY simulated seconds. Notes (rejects) are printed above it. Run
    it as `with display.progress:`."""

    EVERY = 10.0

    def __init__(self, product: str, seconds: float) -> None:
        self.console = Console(stderr=True)
        self.product = product
        self.next_line = self.EVERY
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=None),
            TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
            TextColumn("{task.fields[published]} published"),
            TextColumn("{task.fields[rejected]} rejected"),
            TextColumn("{task.fields[photos]} photos"),
            TextColumn("{task.fields[rate]:.1f} records/s"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self.task = self.progress.add_task(
            f"simulate → {product}", total=seconds, published=0, rejected=0, photos=0, rate=0.0
        )

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def update(self, tally: Tally) -> None:
        self.progress.update(
            self.task,
            completed=tally.simulated,
            published=tally.published,
            rejected=tally.rejected,
            photos=tally.photos,
            rate=tally.records_per_second,
        )
        if self.progress.disable and tally.simulated >= self.next_line:
            self.next_line += self.EVERY
            self.note(
                f"{self.product}: {tally.simulated:.0f} s, {tally.published} published, "
                f"{tally.rejected} rejected, {tally.photos} photos, "
                f"{tally.records_per_second:.1f} records/s"
            )


def simulate(
    rate: Annotated[
        float, typer.Option(help="Violations captured per second across the fleet, on average.")
    ] = 10.0,
    duration: Annotated[
        str, typer.Option(help="How long to run: seconds (90) or 30s, 5m, 1.5h.")
    ] = "1m",
    vehicles: Annotated[
        int, typer.Option(min=1, max=MAX_VEHICLES, help="Robotaxis on the road.")
    ] = 20,
    seed: Annotated[
        int, typer.Option(help="The same seed gives the same routes, plates and photos.")
    ] = 7,
    product: Annotated[str, typer.Option(help="The product to publish to.")] = (
        "violation-captures"
    ),
    photos: Annotated[
        bool, typer.Option("--photos/--no-photos", help="Draw and upload a photo per record.")
    ] = True,
    batch: Annotated[int, typer.Option(min=1, help="Records per request, at most.")] = 100,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register", help="Register the product if the exchange has none."
        ),
    ] = True,
    url: UrlOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    profile: ProfileOption = None,
) -> None:
    """Simulate a robotaxi fleet in Guangzhou capturing traffic violations, and publish
    them with their photos in real time. Rejected records are printed, not fatal.
    Exit status: 0 done, 1 could not go on, 2 usage, 130 interrupted."""
    if not (math.isfinite(rate) and rate > 0):
        raise typer.BadParameter(f"must be a number more than 0, not {rate}", param_hint="--rate")
    try:
        seconds = parse_duration(duration)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--duration") from None
    with client_from(url, client_id, client_secret, profile) as client:
        _prepare(client, product, register)
        shown = _Display(product, seconds)
        with shown.progress:
            simulator = Simulator(
                client,
                product,
                Fleet(seed, vehicles, photos=photos),
                rate=rate,
                batch=batch,
                note=shown.note,
                on_second=shown.update,
            )
            status, problem = _run(simulator, seconds)
    for line in simulator.tally.lines():
        typer.echo(line)
    if problem:
        typer.echo(problem, err=True)
    if status:
        raise typer.Exit(status)


def _prepare(client: ExchangeClient, product: str, register: bool) -> None:
    try:
        if ensure_product(client, product, register=register):
            typer.echo(f"registered {product}", err=True)
    except NotFound:
        fail(f"{product}: no such product on the exchange (drop --no-register to register it)")
    except ExchangeError as error:
        fail(_explain(error, product))


def _run(simulator: Simulator, seconds: float) -> tuple[int, str | None]:
    """The exit status and what stopped the run, if anything did."""
    try:
        simulator.run(seconds)
    except KeyboardInterrupt:
        return 130, "interrupted"
    except PayloadTooLarge:
        batch = simulator.batch
        return 1, f"error: a batch of {batch} records is too large for the exchange; lower --batch"
    except ExchangeError as error:
        return 1, f"error: {_explain(error, f'{simulator.product}: publishing stopped')}"
    return 0, None


def _explain(error: ExchangeError, what: str) -> str:
    if isinstance(error, Denied):
        return f"{what}: denied: {error.reason}" + (f" ({error.hint})" if error.hint else "")
    if isinstance(error, ConnectionFailed):
        return f"cannot reach the exchange ({error.detail})"
    return f"{what}: the exchange answered {error}"


__all__ = ["Simulator", "Tally", "ensure_product", "parse_duration", "simulate"]
