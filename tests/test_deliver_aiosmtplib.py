"""The DATA fast path (digest.deliver.connection.send_data) against the installed aiosmtplib.

send_data does what aiosmtplib's SMTP.data and SMTPProtocol.execute_data_command do, but
through the protocol's execute_command, write and read_response, which are not the library's
public API. These tests fail, saying what to do, as soon as the installed aiosmtplib's versions
of those functions differ from the ones send_data was checked against.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import aiosmtplib
import pytest
from aiosmtplib.protocol import SMTPProtocol

# Each function send_data relies on or copies, by a fingerprint of its code (comments,
# docstring and layout left out), as in the aiosmtplib version it was checked against.
CHECKED_VERSION = "5.1.3"
FINGERPRINTS: dict[str, tuple[Callable[..., Any], str]] = {
    "SMTPProtocol.execute_command": (SMTPProtocol.execute_command, "2a6c696fb1663909"),
    "SMTPProtocol.write": (SMTPProtocol.write, "c9e8579671c7eb5c"),
    "SMTPProtocol.read_response": (SMTPProtocol.read_response, "ffe3492ebd8f979c"),
    "SMTPProtocol.execute_data_command": (
        SMTPProtocol.execute_data_command,
        "623094c8b768111c",
    ),
    "SMTP.data": (aiosmtplib.SMTP.data, "2dd3c8cd9b324de3"),
}

WHAT_TO_DO = (
    "digest/deliver/connection.py send_data copies what SMTP.data and "
    "SMTPProtocol.execute_data_command do, with the protocol's execute_command, write and "
    "read_response (not aiosmtplib's public API). Read the new code of these functions; make "
    "send_data do what they do now (or have it call smtp.data and drop the fast path); then "
    "update FINGERPRINTS and CHECKED_VERSION here and the aiosmtplib bounds in pyproject.toml."
)


def fingerprint(function: Callable[..., Any]) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    node = tree.body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        node.body = node.body[1:]  # the docstring
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_the_aiosmtplib_internals_send_data_uses_are_unchanged(name):
    function, expected = FINGERPRINTS[name]
    got = fingerprint(function)
    if got != expected:
        pytest.fail(
            f"aiosmtplib {aiosmtplib.__version__} (checked: {CHECKED_VERSION}): {name} changed "
            f"(fingerprint {got}, was {expected}). {WHAT_TO_DO}"
        )


def test_the_signatures_send_data_calls_are_there():
    params = inspect.signature(SMTPProtocol.execute_command).parameters
    assert "timeout" in params, WHAT_TO_DO
    assert list(inspect.signature(SMTPProtocol.write).parameters) == ["self", "data"], WHAT_TO_DO
    assert "timeout" in inspect.signature(SMTPProtocol.read_response).parameters, WHAT_TO_DO
    assert aiosmtplib.SMTPStatus.start_input == 354 and aiosmtplib.SMTPStatus.completed == 250
