"""`digest subscribers list|import|export|remove` and `digest state copy`, through the real CLI
on a real state: readers that do not belong in a TOML file, validated as the config's tables
are, with the line of the first problem; the config wins for the readers it lists."""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load_config
from digest.location import StateLocation
from digest.store import Store
from digest.store.copy import TABLES
from tests.support.helpers import hf_items, hf_page, write_config

DATE = "2026-06-12"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    (tmp_path / "papers.html").write_text(hf_page(hf_items()), encoding="utf-8")
    return write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[{"email": "ada@example.org", "name": "Ada", "keywords": {"agent": 2}}],
    )


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def listing(config: Path) -> dict[str, list[str]]:
    result = run("subscribers", "list", "-c", str(config))
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
    # email, origin, confirmed, status, time and zone, name: the confirmed column left out
    return {row[0]: [row[1], *row[3:]] for row in rows}


CSV = """email,name,keywords,exclude,timezone,send_at,max_papers
bea@example.org,Bea,"diffusion=3;video generation",survey,Europe/Berlin,06:30,4
cyd@example.org,"Cyd, Jr.",reasoning,,Asia/Kolkata,08:00,
"""


def test_import_csv_lists_exports_and_round_trips(config_file, tmp_path):
    imported = run(
        "subscribers", "import", str(write(tmp_path / "r.csv", CSV)), "-c", str(config_file)
    )
    assert imported.exit_code == 0, imported.output
    assert "imported 2 readers (2 new or changed, 0 as they were)" in imported.output

    rows = listing(config_file)
    assert rows["ada@example.org"][:2] == ["config", "active"]
    assert rows["bea@example.org"][:3] == ["import", "active", "06:30 Europe/Berlin"]
    assert rows["cyd@example.org"][-1] == "Cyd, Jr."

    exported = run("subscribers", "export", "-c", str(config_file))
    assert exported.exit_code == 0, exported.output
    tables = {t["email"]: t for t in map(json.loads, exported.stdout.splitlines())}
    assert tables["bea@example.org"]["keywords"] == {"diffusion": 3.0, "video generation": 1.0}
    assert tables["bea@example.org"]["exclude"] == ["survey"]
    assert tables["bea@example.org"]["max_papers"] == 4

    # what export wrote, import reads back as it was (both formats)
    for flag, name in (([], "back.jsonl"), (["--csv"], "back.csv")):
        out = run("subscribers", "export", *flag, "-c", str(config_file)).stdout
        again = run(
            "subscribers", "import", str(write(tmp_path / name, out)), "-c", str(config_file)
        )
        assert again.exit_code == 0, again.output
        assert "(0 new or changed, 2 as they were)" in again.output  # ada: the config's
        assert "skipped ada@example.org: listed in the config, which wins" in again.output


def test_imported_readers_get_their_digest(config_file, tmp_path):
    run("subscribers", "import", str(write(tmp_path / "r.csv", CSV)), "-c", str(config_file))
    sent = run("send-now", "-c", str(config_file), "--date", DATE)
    assert sent.exit_code == 0, sent.output
    received = {
        BytesParser(policy=policy.default).parsebytes(f.read_bytes())["To"].addresses[0].addr_spec
        for f in (tmp_path / "outbox").glob("*.eml")
    }
    assert received == {"ada@example.org", "bea@example.org", "cyd@example.org"}


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        (
            "r.jsonl",
            '{"email": "bea@example.org"}\n\n{"email": "cyd@example.org", "timezone": "Mars/Base"}\n',
            "r.jsonl: line 3",
        ),
        ("r.jsonl", '{"email": "bea@example.org"}\n{"email": "bea@EXAMPLE.org"}\n', "twice"),
        ("r.jsonl", '{"email": "bea@example.org", "colour": "red"}\n', "colour"),
        ("r.jsonl", '{"a": ' + "[" * 60_000 + "\n", "line 1: not JSON"),
        ("r.csv", "name,keywords\nBea,x\n", "no email column"),
        ("r.csv", 'email,keywords\nbea@example.org,"a=b"\n', "weight of 'a' is not a number"),
        ("r.csv", "email,name\nbea@example.org,Bea,extra\n", "line 2: 3 fields"),
        ("r.csv", "email\nnot-an-address\n", "r.csv: line 2"),
        ("r.csv", "email,name\nbea@example.org," + "x" * 70_000 + "\n", "line 2 is 70,"),
        ("r.bin", b"\x00\x01\x02PK\x03\x04" * 100, "not a text file"),
        ("r.csv", "email\nb\xe9a@example.org\n".encode("latin-1"), "line 2 is not UTF-8"),
    ],
)
def test_a_bad_file_imports_nothing_and_names_the_line(config_file, tmp_path, name, text, says):
    bad = write(tmp_path / name, text)
    result = run("subscribers", "import", str(bad), "-c", str(config_file))
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()  # one line, with the fix
    assert line.startswith("digest: error: ") and says in line and "(fix: " in line, line
    assert set(listing(config_file)) == {"ada@example.org"}  # nothing imported


def test_a_missing_file_is_one_line(config_file, tmp_path):
    result = run("subscribers", "import", str(tmp_path / "nope.csv"), "-c", str(config_file))
    assert result.exit_code == 2
    assert "cannot read" in result.output and "nope.csv" in result.output


def test_remove_keeps_history_and_the_config_wins(config_file, tmp_path):
    run("subscribers", "import", str(write(tmp_path / "r.csv", CSV)), "-c", str(config_file))
    assert run("send-now", "-c", str(config_file), "--date", DATE).exit_code == 0

    removed = run("subscribers", "remove", "bea@example.org", "-c", str(config_file))
    assert removed.exit_code == 0, removed.output
    assert listing(config_file)["bea@example.org"][:2] == ["import", "removed"]
    exported = run("subscribers", "export", "-c", str(config_file)).stdout
    assert "bea@example.org" not in exported
    with Store.open(load_config(config_file).digest.state) as store:  # history kept
        assert {d.subscriber for d in store.digests()} >= {"bea@example.org"}

    again = run("subscribers", "remove", "bea@example.org", "-c", str(config_file))
    assert again.exit_code == 2 and "no active reader" in again.output
    listed = run("subscribers", "remove", "ada@example.org", "-c", str(config_file))
    assert listed.exit_code == 2
    assert "listed in the config, which wins" in listed.output and "digest.toml" in listed.output

    # the next day, a removed reader gets nothing; the others do
    (tmp_path / "outbox").mkdir(exist_ok=True)
    before = set((tmp_path / "outbox").glob("*.eml"))
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:5]), encoding="utf-8")
    assert run("send-now", "-c", str(config_file), "--date", "2026-06-13").exit_code == 0
    new = set((tmp_path / "outbox").glob("*.eml")) - before
    to = {
        BytesParser(policy=policy.default).parsebytes(f.read_bytes())["To"].addresses[0].addr_spec
        for f in new
    }
    assert "bea@example.org" not in to


def test_a_reader_dropped_from_the_config_is_deactivated_with_history(config_file, tmp_path):
    assert run("send-now", "-c", str(config_file), "--date", DATE).exit_code == 0
    write_config(
        config_file,
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[{"email": "bob@example.org"}],
    )
    rows = listing(config_file)
    assert rows["ada@example.org"][:2] == ["config", "removed"]
    assert rows["bob@example.org"][:2] == ["config", "active"]


def test_every_table_of_the_state_is_copied(tmp_path):
    """A table a migration adds must be added to the copy, or `state copy` would lose it."""
    with Store.open(tmp_path / "s.sqlite3") as store:
        tables = {
            name
            for (name,) in store.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
    assert tables - {"schema_migrations", "meta"} == set(TABLES)


def test_state_copy_moves_a_sqlite_state_to_postgresql(config_file, tmp_path, postgres_url):
    run("subscribers", "import", str(write(tmp_path / "r.csv", CSV)), "-c", str(config_file))
    assert run("send-now", "-c", str(config_file), "--date", DATE).exit_code == 0
    sent_before = len(list((tmp_path / "outbox").glob("*.eml")))

    copied = run("state", "copy", str(tmp_path / "state.sqlite3"), postgres_url)
    assert copied.exit_code == 0, copied.output
    assert "subscribers: 3 rows" in copied.output

    old_state = StateLocation.parse("state.sqlite3", tmp_path)
    new_state = StateLocation.parse(postgres_url, tmp_path)
    with Store.open(old_state) as old, Store.open(new_state) as new:
        for table in TABLES:
            count = f"SELECT COUNT(*) FROM {table}"
            assert old.db.execute(count).fetchone() == new.db.execute(count).fetchone(), table
        assert new.state_id() != old.state_id()  # a new state, told apart from the old

    # the service goes on from the copy: the day is already sent, the next one follows on
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text.replace('"state.sqlite3"', json.dumps(postgres_url)), "utf-8")
    again = run("send-now", "-c", str(config_file), "--date", DATE)
    assert again.exit_code == 0, again.output
    assert "already-sent" in again.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == sent_before
    (tmp_path / "papers.html").write_text(hf_page(hf_items()[:3]), encoding="utf-8")
    assert run("send-now", "-c", str(config_file), "--date", "2026-06-13").exit_code == 0

    into_used = run("state", "copy", str(tmp_path / "state.sqlite3"), postgres_url)
    assert into_used.exit_code == 2
    assert "already holds" in into_used.output and "new, empty" in into_used.output


def test_state_copy_refuses_what_it_cannot_read(tmp_path):
    missing = run("state", "copy", str(tmp_path / "none.sqlite3"), str(tmp_path / "b.sqlite3"))
    assert missing.exit_code == 2 and "no state at" in missing.output
    bad_url = run("state", "copy", str(tmp_path / "a.sqlite3"), "postgresql://u:secret@h/db")
    assert bad_url.exit_code == 2
    assert "secret" not in bad_url.output
