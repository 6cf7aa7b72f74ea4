"""The deploy files: parsed and checked always; `systemd-analyze verify` where it exists."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = ["digest.service", "digest-send.service", "digest-send.timer"]
HARDENING = {
    "DynamicUser": "yes",
    "StateDirectory": "digest",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
}


def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return parser


def test_the_daemon_unit_is_hardened_and_reloadable():
    service = unit("digest.service")["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, key
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["LoadCredential"].startswith("smtp-password:")
    assert "$$CREDENTIALS_DIRECTORY/smtp-password" in service["ExecStart"]
    assert service["ExecStart"].endswith("digest run'")
    assert unit("digest.service")["Install"]["WantedBy"] == "multi-user.target"


def test_the_one_shot_service_and_its_timer():
    service = unit("digest-send.service")["Service"]
    assert service["Type"] == "oneshot"
    for key, value in HARDENING.items():
        assert service.get(key) == value, key
    assert service["ExecStart"].endswith("digest send-now'")
    timer = unit("digest-send.timer")["Timer"]
    assert timer["Persistent"] == "true"
    assert "RandomizedDelaySec" in timer
    # a cadence of an hour or less: every send time is met by its own run (digest.schedule)
    assert re.fullmatch(r"\*:0/(5|10|15|20|30)|hourly", timer["OnCalendar"])


def test_the_crontab_line_runs_send_now_every_15_minutes():
    lines = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    [line] = lines
    fields = line.split(None, 5)
    assert fields[:5] == ["*/15", "*", "*", "*", "*"]
    assert "digest send-now" in fields[5]


def test_the_exec_start_reads_the_password_from_the_credential(tmp_path):
    """Run the unit's shell command as systemd would (with $$ unescaped), minus the daemon."""
    (tmp_path / "smtp-password").write_text("s3cret pass\n")
    exec_start = unit("digest.service")["Service"]["ExecStart"].replace("$$", "$")
    argv = shlex.split(exec_start)
    assert argv[:2] == ["/bin/sh", "-c"]
    script = argv[2].replace("/opt/digest/.venv/bin/digest run", "printenv DIGEST_SMTP_PASSWORD")
    out = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"CREDENTIALS_DIRECTORY": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "s3cret pass\n"


def test_container_files_keep_the_state_on_a_volume():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'VOLUME ["/var/lib/digest"]' in dockerfile and 'CMD ["run"]' in dockerfile
    compose = (DEPLOY / "compose.yaml").read_text()
    assert "digest-state:/var/lib/digest" in compose
    assert "/run/secrets/smtp-password" in compose


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_passes(tmp_path):
    # verify checks that ExecStart's program exists: point the units at this venv's script.
    script = Path(sys.executable).parent / "digest"
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace("/opt/digest/.venv/bin/digest", str(script))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
    )
    # Unknown keys are only warnings (exit 0): any output at all is a failure.
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        result.stdout + result.stderr
    )
