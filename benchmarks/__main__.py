"""`python -m benchmarks [--database-url URL]`: print records/s with same-run baselines.

Figures, not assertions: this machine is shared, so compare ratios within one run.
"""

import argparse
import tempfile
from pathlib import Path

from benchmarks import records
from benchmarks.server import running_exchange


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exchange-bench-") as directory:
        scratch = Path(directory)
        with running_exchange(scratch / "data", arguments.database_url) as running:
            rows = records.run(running, scratch)
    engine = (arguments.database_url or "sqlite").split(":")[0]
    print(f"\nrecords ({engine})")
    print(f"{'measure':<56}{'records/s':>12}{'ratio':>8}")
    for name, rate, ratio in rows:
        print(f"{name:<56}{rate:>12,.0f}{ratio:>8}")


if __name__ == "__main__":
    main()
