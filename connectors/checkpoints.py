"""How far a publish run got, kept on disk so an interrupted run carries on.

Invariants:

- A checkpoint is written only after the exchange acknowledged a batch (and its
  images were uploaded), so every position it records is on the exchange. What
  came after is sent again on resume, which the exchange's idempotent ids make
  harmless (those records come back `unchanged`).
- It is replaced atomically: a temporary file in the same directory, fsync,
  rename, fsync of the directory. A kill at any instant leaves the old
  checkpoint or the new one, never a torn one.
- It names each input file by its absolute path and fingerprint (size, mtime and
  the SHA-256 of its head). A file whose fingerprint changed is not resumed: its
  positions may no longer mean the same rows.

The file is JSON (format 1):

    {"format": 1, "product": "violation-captures", "complete": false,
     "rejects": "/data/violation-captures.rejects.ndjson", "rejects_bytes": 812,
     "totals": {"accepted": 4000, "unchanged": 0, "rejected": 3, ...},
     "files": [{"path": "/data/day1.ndjson", "size": 1048576,
                "mtime_ns": 1764598412000000000, "head_sha256": "9f2c…",
                "position": 4003, "rows": 4003, "done": false}]}

`position` is the position (as connectors/tabular.py numbers rows) of the last
acknowledged row of the file (null: none yet), `rows` how many rows that covers,
rejected ones included. `rejects_bytes` is how long the rejects file was at that
moment: a resumed run cuts the file back to it, so the rejects of the batch that
was in flight are written once (see `RejectsFile`).
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

FORMAT = 1
HEAD_BYTES = 64 * 1024
DIRECTORY = Path(".exchange-publish")


class CheckpointError(Exception):
    """The checkpoint cannot be used: unreadable, or for other input."""


class InputChanged(CheckpointError):
    """An input file is not the one the checkpoint was written for."""


@dataclass(frozen=True)
class Fingerprint:
    size: int
    mtime_ns: int
    head_sha256: str

    @classmethod
    def of(cls, path: Path) -> "Fingerprint":
        status = path.stat()
        with path.open("rb") as stream:
            head = stream.read(HEAD_BYTES)
        return cls(status.st_size, status.st_mtime_ns, hashlib.sha256(head).hexdigest())

    def differences(self, other: "Fingerprint") -> list[str]:
        """What changed from `other` to this, in words."""
        changed = []
        if self.size != other.size:
            changed.append(f"size {other.size} → {self.size} bytes")
        if self.mtime_ns != other.mtime_ns:
            changed.append("modification time")
        if self.head_sha256 != other.head_sha256:
            changed.append("content")
        return changed


@dataclass
class FileMark:
    path: str
    fingerprint: Fingerprint
    position: int | None = None
    rows: int = 0
    done: bool = False


@dataclass
class Checkpoint:
    product: str
    files: list[FileMark]
    rejects: str | None = None
    rejects_bytes: int = 0
    complete: bool = False
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def started(self) -> bool:
        return any(mark.rows or mark.done for mark in self.files)

    def to_json(self) -> dict[str, Any]:
        files = [
            {
                "path": m.path,
                **asdict(m.fingerprint),
                "position": m.position,
                "rows": m.rows,
                "done": m.done,
            }
            for m in self.files
        ]
        return {
            "format": FORMAT,
            "product": self.product,
            "complete": self.complete,
            "rejects": self.rejects,
            "rejects_bytes": self.rejects_bytes,
            "totals": self.totals,
            "files": files,
        }

    @classmethod
    def from_json(cls, body: Any) -> "Checkpoint":
        """Raises CheckpointError for anything but a format-1 checkpoint."""
        try:
            if body["format"] != FORMAT:
                raise CheckpointError(f"format {body['format']!r}, not {FORMAT}")
            files = [
                FileMark(
                    path=str(item["path"]),
                    fingerprint=Fingerprint(
                        int(item["size"]), int(item["mtime_ns"]), str(item["head_sha256"])
                    ),
                    position=None if item["position"] is None else int(item["position"]),
                    rows=int(item["rows"]),
                    done=bool(item["done"]),
                )
                for item in body["files"]
            ]
            return cls(
                product=str(body["product"]),
                files=files,
                rejects=None if body["rejects"] is None else str(body["rejects"]),
                rejects_bytes=int(body["rejects_bytes"]),
                complete=bool(body["complete"]),
                totals={str(k): int(v) for k, v in body["totals"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(f"not a publish checkpoint ({error!r})") from None

    def save(self, path: Path) -> None:
        """Replace the checkpoint file atomically and durably."""
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.to_json(), indent=1, ensure_ascii=False).encode()
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class RejectsFile:
    """The rejects file (NDJSON), appended to and synced before each checkpoint."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    @classmethod
    @contextmanager
    def opened(cls, path: Path, checkpoint: Checkpoint) -> Iterator["RejectsFile"]:
        """Open for appending. Resuming into the same file, it is first cut back to
        what the checkpoint covers; otherwise it starts empty. Made readable by its
        owner only: a reject quotes the row's values, personal data included."""
        name = str(path.resolve())
        keep = checkpoint.rejects_bytes if checkpoint.started and checkpoint.rejects == name else 0
        checkpoint.rejects, checkpoint.rejects_bytes = name, keep
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with open(descriptor, "a+", encoding="utf-8") as stream:
            stream.truncate(min(keep, stream.seek(0, os.SEEK_END)))
            stream.seek(0, os.SEEK_END)
            yield cls(stream)

    def write(self, problems: list[dict[str, Any]]) -> None:
        for problem in problems:
            self.stream.write(json.dumps(problem, ensure_ascii=False) + "\n")

    def sync(self) -> int:
        """Flush to disk; the file's length."""
        self.stream.flush()
        os.fsync(self.stream.fileno())
        return self.stream.tell()


def default_path(product: str, paths: Sequence[Path]) -> Path:
    """`.exchange-publish/<product>-<hash>.json`, the hash over the absolute paths.

    Sizes are deliberately left out of the name: a file that grew must meet its
    old checkpoint and be refused (or restarted), not quietly start a new one."""
    names = "\n".join(str(path.resolve()) for path in paths)
    digest = hashlib.sha256(f"{product}\n{names}".encode()).hexdigest()[:12]
    return DIRECTORY / f"{product}-{digest}.json"


def load(path: Path) -> Checkpoint | None:
    """The checkpoint at `path`, None if there is none; CheckpointError if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: {error}") from None
    try:
        body = json.loads(text)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    try:
        return Checkpoint.from_json(body)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None


def begin(path: Path, product: str, paths: Sequence[Path], *, restart: bool) -> Checkpoint:
    """The checkpoint to go on from: the stored one if it is for exactly these
    files, unchanged; a fresh one if there is none or `restart`.

    Raises InputChanged if an input file changed since the checkpoint, and
    CheckpointError if the checkpoint is unreadable or for other input."""
    fresh = Checkpoint(
        product=product,
        files=[FileMark(str(p.resolve()), Fingerprint.of(p)) for p in paths],
    )
    if restart:
        return fresh
    stored = load(path)
    if stored is None:
        return fresh
    if stored.product != product or [m.path for m in stored.files] != [m.path for m in fresh.files]:
        raise CheckpointError(
            f"{path} is for {stored.product} from other files; run with --restart to start "
            "over, or give another --checkpoint"
        )
    for old, new in zip(stored.files, fresh.files, strict=True):
        if changed := new.fingerprint.differences(old.fingerprint):
            raise InputChanged(
                f"{new.path} changed since {path} was written ({', '.join(changed)}); "
                "run with --restart to publish it from the start (records already on the "
                "exchange come back unchanged)"
            )
    return stored
