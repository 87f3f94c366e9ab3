"""`python -m benchmarks [--database-url URL]
[--only records|audit|policy|images|feeds|connectors|console|linkage] [--max-entries N]`:
print records/s, audit-log, policy-decision, image-redaction, webhook-feed,
connector, console and linkage figures with same-run baselines.

Figures, not assertions: this machine is shared, so compare ratios within one run.
"""

import argparse
import tempfile
from pathlib import Path

from benchmarks import audit, connectors, console, feeds, images, linkage, policy, records
from benchmarks.databases import fresh_database
from benchmarks.server import running_exchange


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument(
        "--only",
        choices=[
            "records",
            "audit",
            "policy",
            "images",
            "feeds",
            "connectors",
            "console",
            "linkage",
        ],
        help="default: all",
    )
    parser.add_argument(
        "--max-entries",
        type=int,
        default=audit.MAX_ENTRIES,
        help="the largest audit log to time proofs on (default: %(default)s)",
    )
    arguments = parser.parse_args()
    engine = (arguments.database_url or "sqlite").split(":")[0]
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as directory:
        scratch = Path(directory)
        if arguments.only in (None, "records"):
            with (
                fresh_database(scratch, arguments.database_url, "records") as url,
                running_exchange(scratch / "data", url) as running,
            ):
                rows = records.run(running)
            print(f"\nrecords ({engine})")
            print(f"{'measure':<56}{'records/s':>12}{'ratio':>8}")
            for name, rate, ratio in rows:
                print(f"{name:<56}{rate:>12,.0f}{ratio:>8}")
        if arguments.only in (None, "audit"):
            rows = audit.run(scratch, arguments.database_url, arguments.max_entries)
            limited = arguments.max_entries < audit.MAX_ENTRIES
            note = f"; largest log {arguments.max_entries:,}, set by --max-entries" * limited
            _table(f"audit log ({engine}{note})", rows)
        if arguments.only in (None, "policy"):
            _table("policy decisions (vs raw Casbin on the same lines)", policy.run())
        if arguments.only in (None, "images"):
            _table("image redaction (vs plain decode + encode of the same photo)", images.run())
        if arguments.only in (None, "feeds"):
            rows = feeds.run(scratch, arguments.database_url)
            _table(f"webhook feeds ({engine}; vs bare httpx POSTs to the same receiver)", rows)
        if arguments.only in (None, "connectors"):
            with (
                fresh_database(scratch, arguments.database_url, "connectors") as url,
                running_exchange(scratch / "connectors-data", url) as running,
            ):
                rows = connectors.run(running)
            _table(f"publishing through the connectors ({engine}; vs raw httpx posts)", rows)
        if arguments.only in (None, "console"):
            with (
                fresh_database(scratch, arguments.database_url, "console") as url,
                running_exchange(scratch / "console-data", url) as running,
            ):
                rows = console.run(running)
            _table(f"console pages ({engine}; vs the API calls behind them)", rows)
        if arguments.only in (None, "linkage"):
            with (
                fresh_database(scratch, arguments.database_url, "linkage") as url,
                running_exchange(scratch / "linkage-data", url) as running,
            ):
                rows = linkage.run(running)
            _table(f"linkage and cross-checks ({engine}; vs the plain reads they replace)", rows)


def _table(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n{title}")
    print(f"{'measure':<64}{'figure':>12}  ratio / extra")
    for name, figure, extra in rows:
        shown = f"{figure:,.0f}" if figure >= 100 else f"{figure:.3f}"
        print(f"{name:<64}{shown:>12}  {extra}")


if __name__ == "__main__":
    main()
