"""Following a pull subscription into a sink: pull, store, then move the cursor.

Each round pulls the events after the stored cursor, stores them and the page's
`next_cursor` together (connectors/sinks.py: the cursor never lands before its
events), and passes that cursor on the next pull, which acknowledges the events
to the exchange. A follower that dies at any point therefore replays from its
last stored cursor, and the sink's dedup absorbs what it had already stored:
every event ends up stored exactly once.

SIGINT/SIGTERM stop it between rounds. During the pull itself (a long poll of up
to `--wait` seconds) the signal interrupts the request at once: nothing of that
page was stored, and the exchange has not been told it was, so nothing is lost.
During a store the signal only asks to stop once it is done.

Exit status: 0 when it stopped (drained with `--once`, or signalled); 1 when the
exchange refused (a suspended or paused subscription, access denied or revoked,
an unknown subscription, an erased product, a cursor the exchange does not
know), could not be reached after the SDK's retries, or the sink failed;
2 for a usage or configuration error.
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from connectors.client import ExchangeClient
from connectors.config import (
    ClientIdOption,
    ClientSecretOption,
    ProfileOption,
    UrlOption,
    client_from,
)
from connectors.errors import BadRequest, Conflict, Denied, ExchangeError, Gone
from connectors.models import EventBatch
from connectors.sinks import Delivery, Sink, SinkError, open_sink

WAIT_MAX = 25.0  # seconds: under the SDK's 30 s read timeout, so a long poll never times out


def _advice(error: ExchangeError, subscription: int) -> str | None:
    """What to do about a refusal, where the exchange's own detail does not say."""
    if isinstance(error, Denied):
        return "the exchange suspended the subscription; once access is restored, resume it"
    if isinstance(error, Conflict):
        return f"if it is paused or suspended: POST /v1/subscriptions/{subscription}/resume"
    if isinstance(error, Gone):
        return "the product was erased: nothing more will come; delete the subscription"
    if isinstance(error, BadRequest):
        return "if the sink's cursor is from another exchange or subscription, use --from-start"
    return None


class _Interrupted(Exception):
    """A stop signal arrived while a pull was in flight."""


class Stopper:
    """SIGINT/SIGTERM ask to stop; inside `interruptible()` they also break off the
    call in progress (by raising `_Interrupted` from the handler)."""

    def __init__(self) -> None:
        self.requested = False
        self._interruptible = False

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        if self._interruptible:
            self._interruptible = False
            raise _Interrupted

    @contextmanager
    def installed(self) -> Iterator["Stopper"]:
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {signum: signal.signal(signum, self._handle) for signum in stops}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        self._interruptible = True
        try:
            if self.requested:  # arrived just before the flag was up
                raise _Interrupted
            yield
        finally:
            self._interruptible = False


def _count(events: int) -> str:
    return f"{events} event" if events == 1 else f"{events} events"


def _delivery(subscription: int, batch: EventBatch) -> Delivery:
    return Delivery(
        subscription,
        batch.product,
        batch.purpose,
        batch.view,
        batch.events,
        cursor=batch.next_cursor,
    )


def follow(
    client: ExchangeClient,
    sink: Sink,
    subscription: int,
    *,
    wait: float,
    limit: int,
    once: bool,
    from_start: bool,
    stopper: Stopper,
) -> int:
    """Pull and store until drained (`once`) or stopped; the number of new events.
    Raises ExchangeError when the exchange refuses, SinkError when the sink fails."""
    cursor = None if from_start else sink.cursor(subscription)
    typer.echo(f"subscription {subscription}: from {cursor or 'the oldest event'}", err=True)
    total = 0
    while not stopper.requested:
        try:
            with stopper.interruptible():
                batch = client.pull(
                    subscription, cursor=cursor, wait=0.0 if once else wait, limit=limit
                )
        except _Interrupted:
            break
        stored = sink.store(_delivery(subscription, batch))
        total += stored.written
        if batch.events or batch.next_cursor != cursor:
            typer.echo(
                f"subscription {subscription}: {_count(len(batch.events))}, "
                f"{stored.written} new; cursor {batch.next_cursor}",
                err=True,
            )
        drained = not batch.events and batch.next_cursor == cursor
        cursor = batch.next_cursor
        if once and drained:
            break
    return total


def pull(
    subscription: Annotated[int, typer.Argument(min=1, help="The pull subscription's id")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Where events go: .ndjson/.jsonl lines, or a .db/.sqlite database"
        ),
    ],
    wait: Annotated[
        float,
        typer.Option(min=0, max=WAIT_MAX, help="Seconds each pull waits for new events"),
    ] = 20.0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Events per pull")] = 100,
    once: Annotated[
        bool, typer.Option("--once", help="Stop when the events there are now are stored")
    ] = False,
    from_start: Annotated[
        bool,
        typer.Option(
            "--from-start",
            help="Ignore the stored cursor: replay from the oldest retained event "
            "(events already stored are skipped)",
        ),
    ] = False,
    url: UrlOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    profile: ProfileOption = None,
) -> None:
    """Follow a pull subscription into a file: each event stored exactly once,
    resuming from the stored cursor. Progress on stderr; Ctrl-C stops cleanly."""
    try:
        sink = open_sink(out)
    except SinkError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    with sink, client_from(url, client_id, client_secret, profile) as client:
        try:
            with Stopper().installed() as stopper:
                total = follow(
                    client,
                    sink,
                    subscription,
                    wait=wait,
                    limit=limit,
                    once=once,
                    from_start=from_start,
                    stopper=stopper,
                )
        except ExchangeError as error:
            typer.echo(f"error: subscription {subscription}: {error}", err=True)
            if advice := _advice(error, subscription):
                typer.echo(f"  {advice}", err=True)
            raise typer.Exit(1) from None
        except SinkError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"subscription {subscription}: stopped; {total} new events stored", err=True)
