"""``python -m caxton_meter.run``: the command line of caxton_meter.

For now its main job is the core's self-check (exactness checks and the
measured cost of the core on this machine).  Exit codes: 0 all well, 1 a
check failed, 2 a usage error.
"""
from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m caxton_meter.run",
        description="Measure message-routing and multi-agent systems. "
                    "Runs the compiled core's self-check and prints its measured figures.")
    p.add_argument("--quick", action="store_true",
                   help="a short run (a few seconds), for CI and first contact")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ._selfcheck import format_self_check, run_self_check

    result = run_self_check(quick=args.quick)
    try:
        print(format_self_check(result), flush=True)
    except BrokenPipeError:           # `... | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
