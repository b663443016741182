"""Test configuration: property tests are random on developers' machines
(more ground covered over time) and derandomized in CI (a submission's
result does not depend on the draw)."""
import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """Debian's nginx on a free loopback port (tests/nginx_server.py), for
    the tests of a module; skipped where nginx is not installed."""
    from nginx_server import NGINX, Nginx
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run installs it)")
    server = Nginx(tmp_path_factory.mktemp("nginx"))
    yield server
    server.stop()
