"""Fixtures for integration tests: real node processes (see ``tests/procesos.py``)."""

from tests.procesos import clusters  # noqa: F401 - the fixture is found by its name
from tests.proxy import proxies  # noqa: F401 - the fixture is found by its name
