"""A recording aiosmtpd server on 127.0.0.1 with scripted faults. (delivery helper)"""

import pytest


@pytest.fixture
def smtp_server():
    raise NotImplementedError
