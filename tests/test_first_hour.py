"""The first hour of a new user, through the CLI: the demo offline, a failed source said as
such (in order, in the summary and in status), checks before promises, and words that tell
the truth (explain, show, preview --date, status beside the daemon, plurals)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.clock import utc_now
from digest.config import load_config
from digest.daemon import plan_tick
from digest.run.claims import new_worker_id, register
from digest.store import Store
from tests.support.helpers import hf_items, hf_page, write_config

DIGEST = str(Path(sys.executable).parent / "digest")
DAY = "2026-06-12"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def offline_env() -> dict[str, str]:
    """Any HTTP(S) request would go to a closed local port and fail."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HTTP_PROXY=proxy, HTTPS_PROXY=proxy, ALL_PROXY=proxy, http_proxy=proxy)
    env.update(https_proxy=proxy, all_proxy=proxy)
    return env


@pytest.fixture
def config_file(tmp_path):
    (tmp_path / "papers.html").write_text(hf_page(hf_items()), encoding="utf-8")
    return write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[
            {"email": "ada@example.org", "name": "Ada", "keywords": {"agent": 2, "reasoning": 1}}
        ],
        digest={"semantic": False},
    )


# --- the demo --------------------------------------------------------------------------------


def test_the_demo_writes_three_digests_with_the_network_blocked(tmp_path):
    folder = tmp_path / "digest-demo"
    result = subprocess.run(
        [DIGEST, "demo", "--dir", str(folder)],
        env=offline_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # the shipped model ranked: no "keywords only" warning
    out = result.stdout.splitlines()
    assert out[0].startswith("demo: 3 readers, one captured day of Hugging Face Daily Papers")
    assert out[1] == "source hf-api: 30 papers"
    pages = sorted((folder / "outbox").glob("*.html"))
    mails = sorted((folder / "outbox").glob("*.eml"))
    assert [p.stem for p in pages] == [m.stem for m in mails]
    assert [m.name for m in mails] == [
        f"{DAY}_{who}_at_example.org.eml" for who in ("ada", "alan", "grace")
    ]
    for mail in mails:
        message = BytesParser(policy=policy.default).parsebytes(mail.read_bytes())
        assert message["Subject"].endswith("· Fri 12 Jun")
        assert "<html" in mail.with_suffix(".html").read_text(encoding="utf-8").lower()
        assert f"digest-demo/outbox/{mail.stem}.html" in result.stdout
    assert re.search(r"  ada@example.org: sent, \d+ papers  digest-demo/outbox/", result.stdout)
    last = out[-1]
    assert last.startswith("open an .html above in a browser")
    assert 'url = "https://huggingface.co/api/daily_papers"' in last
    assert "digest send-now -c digest-demo/digest.toml" in last
    # The folder is an ordinary setup now: its config loads, status reads its state.
    config = load_config(folder / "digest.toml")
    assert len(config.subscribers) == 3 and config.sources[0].type == "hf-api"
    status = run("status", "-c", str(folder / "digest.toml"))
    assert "ada@example.org: 2026-06-12 sent" in status.output


def test_the_readme_starts_with_the_demo_and_the_tests():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    commands = [line.strip() for line in readme.splitlines() if line.startswith("    python3 ")]
    assert commands[:2] == [
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/digest demo",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q",
    ]
    assert "    .venv/bin/digest send-now -c config.example.toml\n" in readme
    assert "(benchmarks/README.md)" in readme


def test_the_demo_starts_afresh_but_never_touches_a_folder_it_did_not_write(tmp_path):
    folder = tmp_path / "demo"
    (folder / "outbox").mkdir(parents=True)
    (folder / "digest.toml").write_bytes(b"# paper digest demo, an older one\n")
    (folder / "outbox" / "old.eml").write_text("old")
    result = run("demo", "--dir", str(folder))
    assert result.exit_code == 0, result.output
    assert not (folder / "outbox" / "old.eml").exists()
    again = run("demo", "--dir", str(folder))  # the same day again: sent again, not "already"
    assert again.exit_code == 0 and again.output.count(": sent, ") == 3, again.output

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = run("demo", "--dir", str(mine))
    assert refused.exit_code == 2
    assert "is not a demo folder (fix: pass --dir with a new folder name)" in refused.output
    assert (mine / "notes.txt").read_text() == "keep me"


# --- a failed source -------------------------------------------------------------------------


def test_a_failed_source_skips_the_day_with_its_error_in_order_when_piped(config_file, tmp_path):
    (tmp_path / "papers.html").unlink()
    result = subprocess.run(
        [DIGEST, "send-now", "-c", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one pipe, as cron and journald see it
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "source hf-papers: FAILED"
    assert lines[1].startswith("digest: error: source hf-papers failed: ")
    assert "papers.html" in lines[1] and "(fix: " in lines[1]
    assert lines[2] == "new papers: 0"
    assert re.fullmatch(
        r"ada@example.org \d{4}-\d\d-\d\d: skipped \(a source failed: the day stays open and "
        r"the next run sends it\)",
        lines[3],
    )
    assert lines[4].startswith("done: 0 new papers, 1 skipped, failed source: hf-papers (")
    assert "nothing-new" not in result.stdout

    status = run("status", "-c", str(config_file))
    assert "1 skipped, failed source: hf-papers (" in status.output  # the recent run
    assert "  hf-papers: FAILED at " in status.output
    assert re.search(
        r"due now: the digest of .*held back while source hf-papers failed", status.output
    )


def test_verbose_adds_the_details(config_file, tmp_path):
    result = run("-v", "send-now", "-c", str(config_file), "--date", DAY)
    assert result.exit_code == 0, result.output
    assert f"  hf-papers {tmp_path / 'papers.html'}" in result.output  # the source's settings
    assert re.search(
        r"ada@example.org 2026-06-12: sent, \d+ papers of 30 candidates", result.output
    )
    plain = run("send-now", "-c", str(config_file), "--date", "2026-06-13")
    assert "candidates" not in plain.output and "timeout" not in plain.output


# --- checks before promises -------------------------------------------------------------------


def test_check_refuses_a_broken_template(config_file, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "paper.txt.j2").write_text("{{ p.title }\n")
    text = config_file.read_text().replace("[digest]\n", '[digest]\ntemplates = "mine"\n', 1)
    config_file.write_text(text)
    result = run("check", "-c", str(config_file))
    assert result.exit_code == 2
    assert "PROBLEMS" in result.output
    assert (
        "templates (" in result.output
        and "mine over the shipped ones) do not render" in result.output
    )
    (tmp_path / "mine" / "paper.txt.j2").write_text("{{ number }}. {{ p.title }}\n")
    ok = run("check", "-c", str(config_file))
    assert ok.exit_code == 0, ok.output
    assert "templates: " in ok.output and "a sample digest renders" in ok.output


def test_check_refuses_a_state_it_cannot_create(config_file, tmp_path):
    (tmp_path / "afile").write_text("")
    config_file.write_text(
        config_file.read_text().replace('state = "state.sqlite3"', 'state = "afile/state.sqlite3"')
    )
    result = run("check", "-c", str(config_file))
    assert result.exit_code == 2
    assert "cannot be created" in result.output and "afile is not a folder" in result.output
    config_file.write_text(
        config_file.read_text().replace('state = "afile/state.sqlite3"', 'state = "new/s.sqlite3"')
    )
    ok = run("check", "-c", str(config_file))
    assert ok.exit_code == 0 and "(SQLite, created on the first run)" in ok.output
    assert not (tmp_path / "new").exists()  # check changes nothing


def test_check_contacts_postgresql_only_with_connect(config_file):
    pytest.importorskip("psycopg")
    url = f"postgresql://digest@127.0.0.1:{closed_port()}/digest"
    config_file.write_text(
        config_file.read_text().replace('state = "state.sqlite3"', f'state = "{url}"')
    )
    offline = run("check", "-c", str(config_file))
    assert offline.exit_code == 0, offline.output
    assert f"state: {url} (PostgreSQL; --connect connects to it)" in offline.output
    connect = run("check", "-c", str(config_file), "--connect")
    assert connect.exit_code == 1
    assert f"cannot connect to the PostgreSQL state {url}" in connect.output


def test_check_warns_of_tls_on_a_starttls_port(config_file, monkeypatch):
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "pw")
    text = config_file.read_text().replace(
        '[delivery]\nmethod = "outbox"',
        '[delivery]\nhost = "smtp.example.org"\nport = 587\nsecurity = "tls"\n'
        'username = "digest"\npassword_env = "DIGEST_SMTP_PASSWORD"',
    )
    config_file.write_text(text)
    result = run("check", "-c", str(config_file))
    assert result.exit_code == 0, result.output
    assert 'security = "tls" on port 587' in result.output
    monkeypatch.delenv("DIGEST_SMTP_PASSWORD")
    missing = run("check", "-c", str(config_file))
    assert missing.exit_code == 2 and "$DIGEST_SMTP_PASSWORD is empty or not set" in missing.output


def _web_config(config_file: Path, port: int) -> None:
    config_file.write_text(
        config_file.read_text()
        + f'[web]\nbase_url = "https://digest.example.org"\nlisten = "127.0.0.1:{port}"\n'
    )


def test_the_daemon_fails_before_it_says_it_serves(config_file, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        _web_config(config_file, taken.getsockname()[1])
        env = {**os.environ, "DIGEST_WEB_SECRET": "s" * 40}
        result = subprocess.run(
            [DIGEST, "run", "-c", str(config_file)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert result.returncode == 1, result.stderr  # as `digest serve` on a port in use
    [line] = result.stderr.splitlines()  # nothing "started", nothing "serving"
    assert line.startswith("digest: error: cannot listen on 127.0.0.1:")
    env.pop("DIGEST_WEB_SECRET")
    no_secret = subprocess.run(
        [DIGEST, "run", "-c", str(config_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert no_secret.returncode == 2
    assert "serving" not in no_secret.stderr and "DIGEST_WEB_SECRET is not set" in no_secret.stderr


def test_the_daemon_says_it_serves_once_it_does(config_file, tmp_path):
    port = closed_port()
    _web_config(config_file, port)
    env = {**os.environ, "DIGEST_WEB_SECRET": "s" * 40}
    proc = subprocess.Popen(
        [DIGEST, "run", "-c", str(config_file)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "serving the web side" in line:
                break
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass  # bound before the line was written
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


# --- words that tell the truth ----------------------------------------------------------------


def test_explain_a_paper_the_sources_hold_but_the_state_does_not(config_file, tmp_path):
    result = run("explain", "2606.13681", "--subscriber", "ada@example.org", "-c", str(config_file))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("2606.13681: EvoArena")
    assert "fetched from the sources now" in lines[1]
    score = re.search(r"  score (\d\.\d{3}): the chance you find it relevant", result.output)
    assert score and 0 <= float(score.group(1)) <= 1
    parts = result.output.split("  its parts:\n", 1)[1].split("  why:", 1)[0]
    for line in parts.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            assert re.fullmatch(r"    \w+ +-?\d+\.\d{3}  \S.*", line), line  # each labelled
    assert not (tmp_path / "state.sqlite3").exists()  # nothing recorded

    unknown = run(
        "explain", "2606.99999", "--subscriber", "ada@example.org", "-c", str(config_file)
    )
    assert unknown.exit_code == 2
    assert "not in the state, nor in today's sources: hf-papers (30 papers)" in unknown.output
    (tmp_path / "papers.html").unlink()
    down = run("explain", "2606.99999", "--subscriber", "ada@example.org", "-c", str(config_file))
    assert (
        down.exit_code == 2 and "not in the state, and a source failed: hf-papers:" in down.output
    )


def test_show_and_preview_date_give_the_digest_as_mailed(config_file, tmp_path):
    assert run("show", "-c", str(config_file)).exit_code == 2  # nothing sent yet: says so
    sent = run("send-now", "-c", str(config_file), "--date", DAY)
    assert sent.exit_code == 0, sent.output
    (mailed,) = (tmp_path / "outbox").glob("*.eml")

    shown = run("show", "-c", str(config_file), "--subscriber", "ada@example.org")
    assert shown.exit_code == 0, shown.output
    message = BytesParser(policy=policy.default).parsebytes(mailed.read_bytes())
    assert f"Subject: {message['Subject']}" in shown.output
    assert message.get_body(("plain",)).get_content().strip().splitlines()[0] in shown.output
    out = tmp_path / "shown"
    written = run("show", "-c", str(config_file), "--date", DAY, "--out", str(out))
    assert written.exit_code == 0, written.output
    assert (out / mailed.name).read_bytes() == mailed.read_bytes()  # the very bytes mailed
    missing = run("show", "-c", str(config_file), "--date", "2026-06-13")
    assert missing.exit_code == 2 and "no digest was sent for 2026-06-13" in missing.output

    preview = run("preview", "-c", str(config_file), "--date", DAY)
    assert preview.exit_code == 0, preview.output
    assert f"ada@example.org ({DAY}): sent at " in preview.output
    assert f"as mailed (digest show --subscriber ada@example.org --date {DAY})" in preview.output
    first_title = message.get_body(("plain",)).get_content()
    titles = re.findall(r"^ +1\. (.+)$", preview.output, re.M)
    assert titles and titles[0][:30] in " ".join(first_title.split())
    again = tmp_path / "again"
    assert run("preview", "-c", str(config_file), "--date", DAY, "--out", str(again)).exit_code == 0
    assert (again / mailed.name).read_bytes() == mailed.read_bytes()


def test_preview_after_the_send_says_nothing_is_new_yet(config_file):
    assert run("send-now", "-c", str(config_file), "--date", DAY).exit_code == 0
    preview = run("preview", "-c", str(config_file), "--date", "2026-06-13")
    assert preview.exit_code == 0, preview.output
    assert "2026-06-13): nothing to send yet: no new papers since their last digest" in (
        preview.output
    )


def test_preview_scores_are_on_the_documented_scale(config_file):
    import json

    result = run("preview", "-c", str(config_file), "--json")
    papers = json.loads(result.output)["subscribers"][0]["papers"]
    assert papers and all(0 <= p["score"] <= 1 for p in papers)


def _send_at_hours_ago(hours: float) -> str:
    return (utc_now() - timedelta(hours=hours)).strftime("%H:%M")


def test_status_and_the_daemon_agree_on_what_is_missed(tmp_path):
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:3]), encoding="utf-8")
    config_path = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[
            {"email": "new@example.org", "timezone": "UTC", "send_at": _send_at_hours_ago(13)},
            {"email": "left@example.org", "timezone": "UTC"},
        ],
        digest={"semantic": False},
    )
    config = load_config(config_path)
    now = utc_now()
    # No daemon: send-now sends it, and status says what a daemon would make of it.
    without = run("status", "-c", str(config_path))
    missed_date = re.search(r"new@example.org: .*due now: the digest of (\S+)", without.output)
    assert missed_date, without.output
    assert "`digest run` would count it missed (more than catch_up_hours = 12 late)" in (
        without.output
    )
    with Store.open(config.digest.state) as store:
        store.sync_config_readers(config.subscribers, now=now, lookback_days=3)
        store.set_unsubscribed("left@example.org", True, now=now)
        register(store, new_worker_id(), "daemon", utc_now)  # a daemon alive now
        plan = plan_tick(store, store.reader_schedules(), now, catch_up=timedelta(hours=12))
    [(reader, due)] = [(r, d) for r, d in plan.missed if r.email == "new@example.org"]
    with_daemon = run("status", "-c", str(config_path))
    assert with_daemon.exit_code == 0, with_daemon.output
    schedule = with_daemon.output.split("next sends:", 1)[1]
    line = next(x for x in schedule.splitlines() if x.startswith("  new@example.org: "))
    assert f"missed: the digest of {due.missed} (due " in line
    assert "its papers go into the next digest" in line and "due now" not in line
    assert missed_date.group(1) == str(due.missed)  # the same date, named alike
    # The unsubscribed reader is listed as such, never under next sends.
    assert "left@example.org" not in schedule
    assert "  left@example.org at " in with_daemon.output
    assert "unsubscribed at" not in with_daemon.output


def test_one_paper_is_one_paper(tmp_path):
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:1]), encoding="utf-8")
    config_path = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[{"email": "ada@example.org"}],  # no keywords: the most upvoted
        digest={"semantic": False},
    )
    result = run("send-now", "-c", str(config_path), "--date", DAY)
    assert result.exit_code == 0, result.output
    assert "source hf-papers: 1 paper\n" in result.output
    assert f"ada@example.org {DAY}: sent, 1 paper (" in result.output
    assert "done: 1 new paper, 1 sent" in result.output
    status = run("status", "-c", str(config_path))
    assert f"ada@example.org: {DAY} sent, 1 paper, 1 attempt" in status.output
    assert re.search(r"\b1 (papers|attempts|subscribers|candidates)\b", status.output) is None


def test_a_reader_in_utc_is_said_once(config_file):
    text = config_file.read_text() + 'timezone = "UTC"\n'
    config_file.write_text(text)
    status = run("status", "-c", str(config_file))
    assert " UTC / " not in status.output and re.search(r"\d\d:\d\d UTC", status.output)


def test_an_unsubscribed_reader_is_said_once(config_file):
    config = load_config(config_file)
    with Store.open(config.digest.state) as store:
        store.sync_config_readers(config.subscribers, now=datetime.now(UTC), lookback_days=3)
        store.set_unsubscribed("ada@example.org", True, now=datetime.now(UTC))
    result = run("send-now", "-c", str(config_file), "--date", DAY)
    assert f"ada@example.org {DAY}: unsubscribed (left at " in result.output
    assert "unsubscribed unsubscribed" not in result.output


def test_pip_install_ships_every_package_and_the_demo_data():
    """`pip install .` (the README's first command) installs what pyproject lists: every
    package of digest/, and the demo's files as package data."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(setuptools["packages"])
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "digest").rglob("__init__.py")
    }
    assert found <= packages, found - packages
    patterns = setuptools["package-data"]["digest.demo"]
    shipped = [p.name for p in (root / "digest" / "demo").iterdir() if p.suffix != ".py"]
    assert shipped and all(
        any(Path(n).match(p) for p in patterns) for n in shipped if n != "__pycache__"
    )
