"""A real local HTTP server (127.0.0.1) serving fixture files and scripted faults. (sources helper)"""

import pytest


@pytest.fixture
def http_server():
    raise NotImplementedError
