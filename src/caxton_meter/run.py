"""``python -m caxton_meter.run``: the command line of caxton_meter (also
installed as ``caxton-meter``).  ``--help`` documents it; the work is in
``caxton_meter._cli``."""
from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m caxton_meter.run"))
