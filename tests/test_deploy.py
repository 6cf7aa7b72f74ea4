"""The deploy files work as written: every unit parses and passes `systemd-analyze verify`,
each secret reaches each process that needs it (the units' ExecStart, digest-admin and the
compose entrypoint run for real, with `digest` swapped for printenv or `digest check`), every
unit a file names exists, and the configs they need load."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from digest.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DIGEST = "/opt/digest/.venv/bin/digest"
UNITS = ["digest.service", "digest-send.service", "digest-send.timer", "digest-web.service"]
SMTP, WEB, DB = "DIGEST_SMTP_PASSWORD", "DIGEST_WEB_SECRET", "DIGEST_DB_PASSWORD"
# Which secrets each service's process needs: the senders sign links and log in to SMTP; the
# web side checks links; all of them may use a PostgreSQL state.
NEEDS = {
    "digest.service": {SMTP, WEB, DB},
    "digest-send.service": {SMTP, WEB, DB},
    "digest-web.service": {WEB, DB},
}
COMMAND = {
    "digest.service": "run",
    "digest-send.service": "send-now",
    "digest-web.service": "serve",
}
HARDENING = {
    "User": "digest",
    "Group": "digest",
    "StateDirectory": "digest",
    "WorkingDirectory": "/var/lib/digest",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
}
SECRET = "s3cret pass with spaces"


class _MultiDict(dict[str, list[str]]):
    """configparser storage keeping every value of a repeated key (LoadCredential=)."""

    def __setitem__(self, key: str, value: object) -> None:
        if isinstance(value, list) and key in self:
            self[key].extend(value)
        else:
            super().__setitem__(key, value)  # type: ignore[assignment]


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections, each key with all its values in order."""
    parser = configparser.RawConfigParser(
        strict=False, interpolation=None, dict_type=_MultiDict, empty_lines_in_values=False
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text(encoding="utf-8"))
    return {s: {k: v.split("\n") for k, v in parser[s].items()} for s in parser.sections()}


def one(name: str, section: str, key: str) -> str:
    [value] = unit(name)[section][key]
    return value


def credentials(name: str) -> dict[str, str]:
    """LoadCredential= of a unit: id -> path."""
    pairs = (v.split(":", 1) for v in unit(name)["Service"].get("LoadCredential", []))
    return {cid: path for cid, path in pairs}


def credential_files(tmp_path: Path, names: set[str]) -> Path:
    folder = tmp_path / "credentials"
    folder.mkdir()
    for name in names:
        (folder / name).write_text(f"{SECRET} {name}\n")  # a trailing newline, as echo leaves
    return folder


def run_exec_start(name: str, credentials_dir: Path, replacement: str) -> str:
    """The unit's ExecStart as systemd runs it ($$ unescaped), `digest COMMAND` replaced."""
    exec_start = one(name, "Service", "ExecStart").replace("$$", "$")
    argv = shlex.split(exec_start)
    assert argv[:2] == ["/bin/sh", "-c"]
    script = argv[2].replace(f"{DIGEST} {COMMAND[name]}", replacement)
    out = subprocess.run(
        ["/bin/sh", "-c", script],
        env={"CREDENTIALS_DIRECTORY": str(credentials_dir), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


# --- systemd ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_each_service_runs_as_the_digest_user_hardened(name):
    service = unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], (name, key)
    assert "DynamicUser" not in service  # one static user: every unit and cron share the state
    assert one(name, "Service", "ExecStart").endswith(f"exec {DIGEST} {COMMAND[name]}'")
    assert service["Environment"] == ["DIGEST_CONFIG=/etc/digest/digest.toml"]


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_each_secret_reaches_each_process_that_needs_it(name, tmp_path):
    """LoadCredential= names each secret the process needs, from /etc/digest/credentials,
    and ExecStart exports it under the name the config gives, trailing newline stripped."""
    loaded = credentials(name)
    assert set(loaded) == NEEDS[name]
    assert all(path == f"/etc/digest/credentials/{cid}" for cid, path in loaded.items())
    folder = credential_files(tmp_path, set(loaded))
    printed = run_exec_start(name, folder, "printenv")
    env = dict(line.split("=", 1) for line in printed.splitlines() if "=" in line)
    for cid in NEEDS[name]:
        assert env[cid] == f"{SECRET} {cid}"
    if SMTP not in NEEDS[name]:
        assert SMTP not in env  # the web side never holds the SMTP password


def test_the_daemon_gets_its_secrets_under_the_configs_names(tmp_path):
    """The real `digest check` behind digest.service's ExecStart: the config's password_env
    and secret_env are found (check refuses without them)."""
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\nstate = "{tmp_path}/state.sqlite3"\n'
        '[delivery]\nhost = "smtp.example.org"\nusername = "digest"\n'
        f'password_env = "{SMTP}"\n'
        f'[web]\nbase_url = "https://digest.example.org"\nsecret_env = "{WEB}"\n'
        '[[subscriber]]\nemail = "ada@example.org"\n',
        encoding="utf-8",
    )
    folder = credential_files(tmp_path, NEEDS["digest.service"])
    (folder / WEB).write_text("w" * 40 + "\n")
    digest = Path(sys.executable).parent / "digest"
    printed = run_exec_start("digest.service", folder, f"{digest} check -c {config}")
    assert "OK" in printed and "secret $DIGEST_WEB_SECRET set" in printed


def test_the_daemon_unit_is_reloadable_and_stops_gracefully():
    service = unit("digest.service")["Service"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["KillSignal"] == ["SIGTERM"] and service["Restart"] == ["on-failure"]
    assert unit("digest.service")["Install"]["WantedBy"] == ["multi-user.target"]
    assert one("digest-send.service", "Service", "Type") == "oneshot"


def test_the_timer_runs_often_enough():
    timer = unit("digest-send.timer")["Timer"]
    assert timer["Persistent"] == ["true"] and "RandomizedDelaySec" in timer
    # a cadence of an hour or less: every send time is met by its own run (digest.schedule)
    assert re.fullmatch(r"\*:0/(5|10|15|20|30)|hourly", timer["OnCalendar"][0])
    assert (DEPLOY / "digest-send.service").exists()  # the unit the timer starts, by its name


def test_the_web_service_and_the_daemon_never_run_together():
    assert one("digest-web.service", "Unit", "Conflicts") == "digest.service"


def test_every_unit_named_anywhere_exists():
    """Each digest unit named in a unit, the crontab, digest-admin or the README is shipped."""
    named: set[str] = set()
    for path in [*DEPLOY.iterdir(), ROOT / "README.md"]:
        if path.is_file():
            named |= set(re.findall(r"\bdigest[\w-]*\.(?:service|timer)\b", path.read_text()))
    assert named >= set(UNITS)
    assert {n for n in named if not (DEPLOY / n).exists()} == set()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_passes(tmp_path):
    # verify checks that ExecStart's program exists: point the units at this venv's script.
    script = Path(sys.executable).parent / "digest"
    for name in UNITS:
        text = (DEPLOY / name).read_text().replace(DIGEST, str(script))
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


# --- digest-admin and cron -------------------------------------------------------------------


def test_digest_admin_runs_digest_as_the_user_with_every_secret(tmp_path):
    """digest-admin as root would run it: the credential files exported by name, the config,
    then `runuser -u digest -- digest ARGS` (runuser here: a stand-in that prints)."""
    folder = credential_files(tmp_path, {SMTP, WEB, DB})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    runuser = bin_dir / "runuser"
    runuser.write_text('#!/bin/sh\necho "argv: $*"; printenv\n')
    runuser.chmod(0o755)
    text = (DEPLOY / "digest-admin").read_text()
    assert "CREDENTIALS=/etc/digest/credentials" in text and "cd /var/lib/digest" in text
    text = text.replace("/etc/digest/credentials", str(folder)).replace(
        "/var/lib/digest", str(tmp_path)
    )
    out = subprocess.run(
        ["/bin/sh", "-c", text, "digest-admin", "status", "-c", "x.toml"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"argv: -u digest -- {DIGEST} status -c x.toml" in out
    env = dict(line.split("=", 1) for line in out.splitlines()[1:] if "=" in line)
    assert {env[n] for n in (SMTP, WEB, DB)} == {f"{SECRET} {n}" for n in (SMTP, WEB, DB)}
    assert env["DIGEST_CONFIG"] == "/etc/digest/digest.toml"


def test_the_cron_line_runs_send_now_every_15_minutes_through_digest_admin():
    lines = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    [line] = lines
    fields = line.split(None, 6)  # /etc/cron.d: five time fields, the user, the command
    assert fields[:6] == ["*/15", "*", "*", "*", "*", "root"]
    assert fields[6].startswith("/usr/local/sbin/digest-admin send-now ")
    assert os.access(DEPLOY / "digest-admin", os.X_OK)


# --- the README's steps ----------------------------------------------------------------------


def test_the_readme_creates_what_the_units_use():
    """The common steps make the user, the state folder, the credential files the units load
    and install digest-admin; each way installs its units."""
    readme = (DEPLOY / "README.md").read_text()
    assert "useradd --system" in readme and " digest\n" in readme
    assert "install -d -o digest -g digest -m 750 /var/lib/digest" in readme
    assert f"for name in {SMTP} {WEB} {DB}; do" in readme
    assert "install -m 755 deploy/digest-admin /usr/local/sbin/digest-admin" in readme
    for name in UNITS:
        assert f"deploy/{name}" in readme, name
    assert "install -m 644 deploy/crontab /etc/cron.d/digest" in readme
    assert "digest state copy" in readme and "postgresql://" in readme
    loaded = {cid for name in NEEDS for cid in credentials(name)}
    assert loaded == {SMTP, WEB, DB}


def test_the_example_config_names_the_secrets_the_units_export():
    example = (ROOT / "config.example.toml").read_text()
    assert f'password_env = "{SMTP}"' in example
    assert f'secret_env = "{WEB}"' in example
    assert f'state_password_env = "{DB}"' in example


# --- containers ------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_postgres_two_daemons_and_the_published_web_side():
    doc = compose()
    services = doc["services"]
    assert set(services) == {"db", "digest", "web"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db-password"
    daemon, web = services["digest"], services["web"]
    assert daemon["deploy"]["replicas"] == 2 and daemon["command"] == ["run"]
    assert "ports" not in daemon  # two replicas cannot publish one port
    assert web["command"] == ["serve"] and web["ports"] == ["127.0.0.1:8080:8080"]
    for service in (daemon, web):
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
        assert "./digest.toml:/etc/digest/digest.toml:ro" in service["volumes"]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    # Every secret used is declared, from a file next to compose.yaml.
    declared = doc["secrets"]
    used = {s["source"] for svc in (daemon, web) for s in svc["secrets"]} | {"db-password"}
    assert used == set(declared)
    assert all(declared[s]["file"] == f"./{s}" for s in used)


def test_compose_hands_each_container_its_secrets_by_name(tmp_path):
    """The entrypoint exports each mounted secret under its target name, then runs digest
    with the service's command (here printenv stands in for digest)."""
    doc = compose()
    for name, needs in (("digest", {SMTP, WEB, DB}), ("web", {WEB, DB})):
        service = doc["services"][name]
        targets = {s["target"] for s in service["secrets"]}
        assert targets == needs
        secrets = tmp_path / name
        secrets.mkdir()
        for target in targets:
            (secrets / target).write_text(f"{SECRET} {target}\n")
        sh, dash_c, script, arg0 = service["entrypoint"]
        assert (sh, dash_c, arg0) == ("/bin/sh", "-c", "digest")
        script = script.replace("$$", "$").replace("/run/secrets", str(secrets))
        script = script.replace('exec digest "$@"', 'echo "args: $*"; exec printenv')
        out = subprocess.run(
            [sh, dash_c, script, arg0, *service["command"]],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"args: {service['command'][0]}" in out
        env = dict(line.split("=", 1) for line in out.splitlines()[1:] if "=" in line)
        assert {env[t] for t in needs} == {f"{SECRET} {t}" for t in needs}


def test_the_compose_config_loads_and_matches_compose_yaml():
    """deploy/digest.compose.toml: PostgreSQL at the db service, the secrets' names, [web]
    listening on the port compose publishes."""
    config = load_config(DEPLOY / "digest.compose.toml")
    assert config.digest.state.url == "postgresql://digest@db:5432/digest"
    assert config.digest.state.password_env == DB
    assert config.delivery.password_env == SMTP
    assert config.web is not None and config.web.secret_env == WEB
    published = compose()["services"]["web"]["ports"][0].rsplit(":", 1)[1]
    assert config.web.listen == f"0.0.0.0:{published}"


def test_the_image_runs_the_daemon_as_uid_10001():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--uid 10001" in dockerfile and "USER digest" in dockerfile
    assert 'ENTRYPOINT ["digest"]' in dockerfile and 'CMD ["run"]' in dockerfile
    assert "chown 10001" in (DEPLOY / "README.md").read_text()
