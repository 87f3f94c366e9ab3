"""`python -m audit EXPORT --public-key KEY`: verify an export offline.

Needs only this package and `cryptography`. KEY is the verifier key text
(`name+keyid+base64`) or a file holding it. Exit 0 if every entry verifies
against the signed checkpoint; 1 naming the first bad entry otherwise.
"""

import argparse
import sys
from pathlib import Path

from audit.checkpoint import CheckpointError, Verifier
from audit.export import ExportProblem, verify_export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m audit", description=__doc__)
    parser.add_argument("export", type=Path)
    parser.add_argument("--public-key", required=True)
    arguments = parser.parse_args(argv)
    key_text = arguments.public_key
    if Path(key_text).is_file():
        key_text = Path(key_text).read_text()
    try:
        verifier = Verifier.parse(key_text)
    except CheckpointError as error:
        print(f"bad public key: {error}", file=sys.stderr)
        return 2
    with arguments.export.open(encoding="utf-8") as lines:
        outcome = verify_export(lines, verifier)
    if isinstance(outcome, ExportProblem):
        print(f"FAILED at {outcome}", file=sys.stderr)
        return 1
    print(
        f"OK: {outcome.entries} entries verified against the checkpoint of "
        f"{outcome.checkpoint.origin} at tree size {outcome.checkpoint.size}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
