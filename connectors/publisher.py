"""Publishing files of records to the exchange: in batches, resumable, with images.

`Publisher(client, product).publish_paths(paths)` reads NDJSON, JSON or CSV files
(CSV rows converted to the product's schema by connectors/tabular.py), sends them
in batches with `atomic=false`, appends every rejected row to the rejects file and
goes on, uploads the image of each published record from an images directory,
and after every acknowledged batch saves the checkpoint (connectors/checkpoints.py).
Run again with the same arguments after an interruption, it skips what the
exchange acknowledged and carries on; the batch that was in flight is sent again
and comes back `unchanged`, and its images are uploaded again, which the exchange
treats as a no-op for the same bytes.

The rejects file is NDJSON, one line per problem: `{"file", "position", "line",
"id", "field", "reason"}` (position: the row's number among the file's records;
line: where it starts, null in a .json file; field: null for the row as a whole).
Rows the exchange rejected and rows that could not be converted or read are
listed, and images it refused (the record itself is published). A fresh run
starts the file anew; a resumed run cuts it back to what the checkpoint covers,
so no reject is listed twice.

`publish` is the `exchange publish` command. Its exit status: 0 when every input
was read to the end (rejects are counted and listed, not fatal); 1 when it could
not go on (bad input, a changed input file, the exchange refused or could not be
reached; the checkpoint keeps what was done); 2 for a usage or configuration
error; 3 when `--stop-on-reject` stopped at a reject; 130 when interrupted.
"""

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connectors import checkpoints
from connectors.checkpoints import Checkpoint, CheckpointError, FileMark, RejectsFile
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
    Unauthorized,
)
from connectors.tabular import (
    CSV_SUFFIXES,
    JSON_SUFFIXES,
    NDJSON_SUFFIXES,
    RowError,
    SourceError,
    SourceRow,
    normalise_name,
    row_id,
    rows,
    to_record,
)

SUFFIXES = (*NDJSON_SUFFIXES, *JSON_SUFFIXES, *CSV_SUFFIXES)
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}


class InputError(Exception):
    """An input path cannot be published: missing, unreadable or of unknown kind."""


@dataclass
class Summary:
    """What one run did; `skipped` rows were acknowledged by an earlier run."""

    checkpoint: Path
    rejects: Path
    accepted: int = 0
    unchanged: int = 0
    rejected: int = 0
    images: int = 0
    images_unchanged: int = 0
    images_refused: int = 0
    skipped: int = 0
    resumed: bool = False
    already_complete: bool = False
    stopped: bool = False
    elapsed: float = 0.0

    @property
    def rows(self) -> int:
        """Rows this run read and settled (published, unchanged or rejected)."""
        return self.accepted + self.unchanged + self.rejected

    @property
    def records_per_second(self) -> float:
        return self.rows / self.elapsed if self.elapsed > 0 else 0.0

    def lines(self) -> list[str]:
        if self.already_complete:
            return [
                f"nothing to do: {self.checkpoint} says this input was published completely "
                "(--restart publishes it again)"
            ]
        lines = []
        if self.resumed:
            lines.append(f"resumed from {self.checkpoint}: skipped {self.skipped} rows")
        lines.append(
            f"accepted {self.accepted}, unchanged {self.unchanged}, rejected {self.rejected}"
        )
        if self.images or self.images_unchanged or self.images_refused:
            lines.append(
                f"images: {self.images} uploaded, {self.images_unchanged} already there, "
                f"{self.images_refused} refused"
            )
        if self.rejected or self.images_refused:
            lines.append(f"rejects in {self.rejects}")
        lines.append(f"{self.elapsed:.1f} s, {self.records_per_second:.0f} records/s")
        if self.stopped:
            lines.append("stopped at the first reject (--stop-on-reject)")
        return lines


@dataclass
class _Batch:
    """Rows read since the last acknowledged batch: the records to send with the rows
    they came from, and the problems found converting the others."""

    records: list[dict[str, Any]] = field(default_factory=list)
    sources: list[SourceRow] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0
    through: int | None = None

    def read(self, row: SourceRow) -> None:
        self.rows += 1
        self.through = row.position


def check_inputs(paths: Sequence[Path]) -> None:
    """Raises InputError for the first path that is not a readable file of a known kind,
    or is given twice, before anything is published."""
    if not paths:
        raise InputError("no input files given")
    seen: set[Path] = set()
    for path in paths:
        if path.suffix.lower() not in SUFFIXES:
            raise InputError(f"{path}: unknown kind of file; use {', '.join(SUFFIXES)}")
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: not readable")
        if (resolved := path.resolve()) in seen:
            raise InputError(f"{path}: given more than once")
        seen.add(resolved)


def image_index(directory: Path) -> dict[str, Path]:
    """Record id → its image file in `directory` (`<id>.jpg` and so on). If an id has
    several, the first suffix of IMAGE_TYPES wins, so the choice never depends on
    the order the directory lists them in."""
    if not directory.is_dir():
        raise InputError(f"{directory}: no such directory")
    ranked = sorted(
        (list(IMAGE_TYPES).index(entry.suffix.lower()), entry.name, entry)
        for entry in directory.iterdir()
        if entry.suffix.lower() in IMAGE_TYPES and entry.is_file()
    )
    found: dict[str, Path] = {}
    for _, _, entry in ranked:
        found.setdefault(entry.stem, entry)
    return found


def _problem(
    path: Path, row: SourceRow | None, record_id: Any, field_name: str | None, reason: str
) -> dict[str, Any]:
    """A line of the rejects file; `line` is where the row starts (None in a .json file)."""
    return {
        "file": str(path),
        "position": row.position if row else None,
        "line": row.line if row else None,
        "id": record_id,
        "field": field_name,
        "reason": reason,
    }


class Publisher:
    """Publishes files of records to one product. See the module docstring.

    `on_batch`, if given, is called with the run's summary so far after every
    acknowledged batch (the command draws its progress bar with it)."""

    def __init__(
        self,
        client: ExchangeClient,
        product: str,
        *,
        batch_size: int = 500,
        images: Path | None = None,
        checkpoint: Path | None = None,
        rejects: Path | None = None,
        stop_on_reject: bool = False,
        id_column: str | None = None,
        zone: tzinfo = UTC,
        restart: bool = False,
        on_batch: Callable[[Summary], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("a batch holds at least one record")
        self.client = client
        self.product = product
        self.batch_size = batch_size
        self.images = images
        self.checkpoint = checkpoint
        self.rejects = rejects or Path(f"{product}.rejects.ndjson")
        self.stop_on_reject = stop_on_reject
        self.id_column = id_column
        self.zone = zone
        self.restart = restart
        self.on_batch = on_batch

    def publish_paths(self, paths: Sequence[Path | str]) -> Summary:
        """Publish every row of the files, resuming from the checkpoint if one is there.

        Raises InputError (bad path or images directory), checkpoints.InputChanged
        (a file changed since the checkpoint; pass restart), checkpoints.CheckpointError,
        and the SDK's ExchangeError (e.g. NotFound for an unknown product, Denied);
        whatever was acknowledged before an error stays in the checkpoint."""
        started = time.monotonic()
        files = [Path(path) for path in paths]
        check_inputs(files)
        images = image_index(self.images) if self.images is not None else {}
        location = self.checkpoint or checkpoints.default_path(self.product, files)
        state = checkpoints.begin(location, self.product, files, restart=self.restart)
        summary = Summary(
            checkpoint=location,
            rejects=self.rejects,
            resumed=state.started,
            skipped=sum(mark.rows for mark in state.files),
        )
        if state.complete:
            summary.already_complete = True
            return summary
        fields = [spec.model_dump() for spec in self.client.product(self.product).fields]
        with RejectsFile.opened(self.rejects, state) as out:
            run = _Run(self, state, summary, out, images, fields, started)
            for path, mark in zip(files, state.files, strict=True):
                if not mark.done and not run.publish_file(path, mark):
                    break
            else:
                state.complete = True
                state.rejects_bytes = out.sync()
                state.save(location)
        summary.elapsed = time.monotonic() - started
        return summary


class _Run:
    """One run's state: the checkpoint it advances and the summary it counts into."""

    def __init__(
        self,
        publisher: Publisher,
        state: Checkpoint,
        summary: Summary,
        out: RejectsFile,
        images: dict[str, Path],
        fields: list[dict[str, Any]],
        started: float,
    ) -> None:
        self.publisher = publisher
        self.started = started
        self.client = publisher.client
        self.state = state
        self.summary = summary
        self.out = out
        self.images = images
        self.fields = fields
        given = publisher.id_column
        # Named as in the header; tabular knows the columns by their normalised names.
        self.id_column = normalise_name(given) if given is not None else None
        self.earlier = dict(state.totals)

    def publish_file(self, path: Path, mark: FileMark) -> bool:
        """Publish the file's rows after its mark; False if stopped at a reject."""
        csv = path.suffix.lower() in CSV_SUFFIXES
        batch = _Batch()
        for row in rows(path):
            if mark.position is not None and row.position <= mark.position:
                continue
            try:
                record = self._record(row, csv)
            except RowError as error:
                problem = _problem(path, row, self._id_of(row, csv), error.field, error.reason)
                if self.publisher.stop_on_reject:
                    return self._stop_before(path, mark, batch, problem)
                batch.problems.append(problem)
                batch.read(row)
                continue
            batch.records.append(record)
            batch.sources.append(row)
            batch.read(row)
            if len(batch.records) >= self.publisher.batch_size:
                if not self._send(path, mark, batch):
                    return False
                batch = _Batch()
        if batch.rows and not self._send(path, mark, batch):
            return False
        mark.done = True
        self._save()
        return True

    def _record(self, row: SourceRow, csv: bool) -> dict[str, Any]:
        """The row as a record: a CSV row converted to the product's types, a JSON
        object as it is (it carries its own `id`). Raises RowError."""
        if row.error is not None:
            raise row.error
        if csv:
            zone = self.publisher.zone
            return to_record(row.values, self.fields, id_column=self.id_column, zone=zone)
        return row.values

    def _id_of(self, row: SourceRow, csv: bool) -> Any:
        """The id of a row that is not a record, for the rejects file, if it has one."""
        if not csv:
            return row.values.get("id")
        try:
            return row_id(row.values, self.id_column) if row.error is None else None
        except RowError:
            return None

    def _stop_before(
        self, path: Path, mark: FileMark, batch: _Batch, problem: dict[str, Any]
    ) -> bool:
        """--stop-on-reject at a row that could not be converted: publish the rows
        before it, then write it; the checkpoint stays before it. Always False."""
        if batch.records and not self._send(path, mark, batch):
            return False
        self.summary.rejected += 1
        self._stop([problem])
        return False

    def _send(self, path: Path, mark: FileMark, batch: _Batch) -> bool:
        """Publish the batch, upload its images, write its rejects, checkpoint. False
        if --stop-on-reject met a reject: then the checkpoint stays before it."""
        problems = self._published(path, batch) if batch.records else []
        self.summary.rejected += len(batch.problems)
        if self.publisher.stop_on_reject and problems:
            first = problems[0][0]
            if first:
                mark.position, mark.rows = batch.sources[first - 1].position, mark.rows + first
            self._save()
            self._stop([problem for _, problem in problems])
            return False
        found = batch.problems + [problem for _, problem in problems]
        self.out.write(sorted(found, key=lambda problem: problem["position"] or 0))
        mark.position, mark.rows = batch.through, mark.rows + batch.rows
        self.state.rejects_bytes = self.out.sync()
        self._save()
        if self.publisher.on_batch is not None:
            self.summary.elapsed = time.monotonic() - self.started
            self.publisher.on_batch(self.summary)
        return True

    def _published(self, path: Path, batch: _Batch) -> list[tuple[int, dict[str, Any]]]:
        """Publish the batch's records and upload their images; the problems the
        exchange found, by index in the batch."""
        outcome = self.client.publish(self.publisher.product, batch.records, atomic=False)
        self.summary.accepted += outcome.accepted
        self.summary.unchanged += outcome.unchanged
        self.summary.rejected += len(outcome.rejected)
        problems: list[tuple[int, dict[str, Any]]] = []
        refused: set[int] = set()
        for item in outcome.rejected:
            index = item.get("index")
            if isinstance(index, int) and 0 <= index < len(batch.records):
                refused.add(index)
                source, record_id = batch.sources[index], batch.records[index].get("id")
            else:  # not expected of the exchange, but never lose a reject over it
                index, source, record_id = 0, None, None
            reason = str(item.get("reason"))
            problems.append((index, _problem(path, source, record_id, item.get("field"), reason)))
        for index, record in enumerate(batch.records):
            if index not in refused and (problem := self._image(path, batch, index, record)):
                problems.append((index, problem))
        return sorted(problems, key=lambda item: item[0])

    def _stop(self, problems: list[dict[str, Any]]) -> None:
        self.out.write(problems)
        self.out.sync()
        self.summary.stopped = True

    def _image(
        self, path: Path, batch: _Batch, index: int, record: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Upload the record's image if the images directory has one; the problem if
        the exchange refused it."""
        record_id = record.get("id")
        image = self.images.get(str(record_id)) if record_id is not None else None
        if image is None:
            return None
        try:
            stored = self.client.put_image(
                self.publisher.product,
                str(record_id),
                image.read_bytes(),
                content_type=IMAGE_TYPES[image.suffix.lower()],
            )
        except IMAGE_REFUSALS as error:
            self.summary.images_refused += 1
            where = error.errors[0] if error.errors else None
            reason = f"{error.detail}: {where.reason}" if where else error.detail
            field_name = where.field if where and where.field else "image"
            return _problem(path, batch.sources[index], record_id, field_name, reason)
        if stored.stored:
            self.summary.images += 1
        else:
            self.summary.images_unchanged += 1
        return None

    def _save(self) -> None:
        for key in ("accepted", "unchanged", "rejected", "images", "images_refused"):
            self.state.totals[key] = self.earlier.get(key, 0) + getattr(self.summary, key)
        self.state.save(self.summary.checkpoint)


class _Display:
    """Progress on stderr: a live bar on a terminal; elsewhere (a log, CI) a plain line
    every EVERY batches, so the log stays readable."""

    EVERY = 20

    def __init__(self, product: str) -> None:
        self.console = Console(stderr=True)
        self.product = product
        self.batches = 0
        self.progress: Progress | None = None
        if self.console.is_terminal:
            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=None),
                TextColumn("{task.completed} records"),
                TextColumn("{task.fields[rate]:.0f}/s"),
                TextColumn("{task.fields[rejected]} rejected"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.task = self.progress.add_task(product, total=None, rate=0.0, rejected=0)

    def __enter__(self) -> "_Display":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, summary: Summary) -> None:
        self.batches += 1
        rate = summary.records_per_second
        if self.progress is not None:
            self.progress.update(
                self.task, completed=summary.rows, rate=rate, rejected=summary.rejected
            )
        elif self.batches % self.EVERY == 0:
            self.console.print(
                f"{self.product}: {summary.rows} records, {rate:.0f}/s, "
                f"{summary.rejected} rejected",
                highlight=False,
                soft_wrap=True,
            )


def publish(
    product: Annotated[str, typer.Argument(help="The product's slug, e.g. violation-captures.")],
    paths: Annotated[
        list[Path],
        typer.Argument(help="NDJSON (.ndjson, .jsonl), JSON (.json) or CSV (.csv) files."),
    ],
    images: Annotated[
        Path | None,
        typer.Option(help="A directory of images named <record id>.jpg (.jpeg, .png, .webp)."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Records per request.")] = 500,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Where progress is kept [.exchange-publish/<product>-<hash>.json]."),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where rejected rows go [<product>.rejects.ndjson].")
    ] = None,
    stop_on_reject: Annotated[
        bool,
        typer.Option(
            "--stop-on-reject", help="Stop at the first rejected row or image (exit status 3)."
        ),
    ] = False,
    id_column: Annotated[
        str | None,
        typer.Option(
            help="The CSV column holding each record's id, as the header names it; "
            "without it, the id is a hash of the row."
        ),
    ] = None,
    zone: Annotated[
        str,
        typer.Option(
            help="The time zone of CSV times written without an offset, e.g. Asia/Shanghai."
        ),
    ] = "UTC",
    restart: Annotated[
        bool,
        typer.Option("--restart", help="Ignore the checkpoint and publish every row again."),
    ] = False,
    url: UrlOption = None,
    client_id: ClientIdOption = None,
    client_secret: ClientSecretOption = None,
    profile: ProfileOption = None,
) -> None:
    """Publish records from files, in batches; run it again to resume after an
    interruption. Rejected rows go to the rejects file and publishing goes on.
    Exit status: 0 done, 1 could not go on, 2 usage, 3 stopped at a reject."""
    try:
        local = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"{zone!r} is not a time zone", param_hint="--zone") from None
    with client_from(url, client_id, client_secret, profile) as client, _Display(product) as shown:
        publisher = Publisher(
            client,
            product,
            batch_size=batch,
            images=images,
            checkpoint=checkpoint,
            rejects=rejects,
            stop_on_reject=stop_on_reject,
            id_column=id_column,
            zone=local,
            restart=restart,
            on_batch=shown.update,
        )
        summary = _run(publisher, paths)
    for line in summary.lines():
        typer.echo(line)
    if summary.stopped:
        raise typer.Exit(3)


def _run(publisher: Publisher, paths: list[Path]) -> Summary:
    """The run, with every foreseeable failure as a message instead of a traceback."""
    product = publisher.product
    resume = "what the exchange acknowledged is in the checkpoint; run again to resume"
    smaller = "run again with a smaller --batch to resume"
    try:
        return publisher.publish_paths(paths)
    except (InputError, CheckpointError, SourceError) as error:
        fail(str(error))
    except OSError as error:
        fail(f"{error.filename or 'input'}: {error.strerror or error}")
    except NotFound as error:
        fail(f"{product}: {error.detail}")
    except Denied as error:
        fail(f"{product}: denied: {error.reason}" + (f" ({error.hint})" if error.hint else ""))
    except Unauthorized as error:
        fail(f"the exchange refused the credentials: {error.detail}")
    except PayloadTooLarge:
        fail(f"a batch of {publisher.batch_size} records is too large for the exchange; {smaller}")
    except ConnectionFailed as error:
        fail(f"cannot reach the exchange ({error.detail}); {resume}")
    except ExchangeError as error:
        fail(f"the exchange answered {error}; {resume}")
    except KeyboardInterrupt:
        typer.echo(f"interrupted; {resume}", err=True)
        raise typer.Exit(130) from None


__all__ = ["InputError", "Publisher", "Summary", "check_inputs", "image_index", "publish"]
