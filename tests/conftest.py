"""Test configuration: property tests are random on developers' machines
(more ground covered over time) and derandomized in CI (a submission's
result does not depend on the draw)."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
