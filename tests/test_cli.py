"""The command line, driven with click's CliRunner over local files and the outbox."""

import json
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from tests.support.helpers import hf_items, hf_page, write_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


@pytest.fixture
def config_file(tmp_path):
    (tmp_path / "papers.html").write_text(hf_page(hf_items()), encoding="utf-8")
    return write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[
            {"email": "ada@example.org", "name": "Ada", "keywords": {"agent": 2, "reasoning": 1}},
            {"email": "bob@example.org", "max_papers": 5},
        ],
    )


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_check_passes_on_the_example_config():
    result = run("check", "-c", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "outbox" in result.output


def test_send_now_writes_to_the_outbox_once_per_date(config_file, tmp_path):
    result = run("send-now", "-c", str(config_file), "--date", "2026-06-12")
    assert result.exit_code == 0, result.output
    assert "new papers: 30" in result.output
    assert "bob@example.org 2026-06-12: sent, 5 papers" in result.output
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    message = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert message["Subject"].endswith(" more · Fri 12 Jun")  # the top paper + N more

    again = run("send-now", "-c", str(config_file), "--date", "2026-06-12")
    assert again.exit_code == 0, again.output
    assert "already-sent" in again.output
    assert "new papers: 0" in again.output


def test_dry_run_changes_nothing_and_writes_html(config_file, tmp_path):
    result = run("send-now", "-c", str(config_file), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: nothing was sent" in result.output
    assert not (tmp_path / "state.sqlite3").exists()
    assert not (tmp_path / "outbox").exists()
    opened = [line.split("open ", 1)[1] for line in result.output.splitlines() if "open " in line]
    assert len(opened) == 2
    assert "<html" in Path(opened[0]).read_text(encoding="utf-8").lower()


def test_preview_json_is_in_rank_order(config_file, tmp_path):
    result = run("preview", "-c", str(config_file), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    emails = [s["email"] for s in doc["subscribers"]]
    assert emails == ["ada@example.org", "bob@example.org"]
    ada = doc["subscribers"][0]["papers"]
    keys = {"id", "title", "score", "matched", "reasons", "score_parts"}
    assert ada and all(set(p) == keys for p in ada)
    assert [p["score"] for p in ada] == sorted((p["score"] for p in ada), reverse=True)
    assert all(p["matched"] for p in ada)
    assert not (tmp_path / "state.sqlite3").exists()


def test_preview_out_writes_html(config_file, tmp_path):
    out = tmp_path / "preview"
    result = run(
        "preview", "-c", str(config_file), "--subscriber", "bob@example.org", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    (page,) = out.glob("*.html")
    assert page.name.endswith("_bob_at_example.org.html")
    assert "<html" in page.read_text(encoding="utf-8").lower()


def test_bad_config_is_exit_2_and_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[subscriber]]\nemail = "ada@example.org"\nkeyword = ["x"]\n')
    result = run("send-now", "-c", str(bad))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "digest: error: bad.toml: [[subscriber]] #1 (ada@example.org): unknown key 'keyword' "
        "(fix: did you mean 'keywords'?)"
    ]
    assert "Traceback" not in result.output


def test_missing_config_names_the_fix():
    result = run("send-now")
    assert result.exit_code == 2
    assert "digest.toml" in result.output and "config.example.toml" in result.output


def test_unknown_only_subscriber_is_usage_error(config_file):
    result = run("send-now", "-c", str(config_file), "--only", "eve@example.org")
    assert result.exit_code == 2
    assert "no subscriber 'eve@example.org'" in result.output


def test_bad_date_is_usage_error(config_file):
    result = run("send-now", "-c", str(config_file), "--date", "12/06/2026")
    assert result.exit_code == 2


def test_broken_source_exits_1_and_says_which(config_file, tmp_path):
    (tmp_path / "papers.html").write_text("<html><body>Service unavailable</body></html>")
    result = run("send-now", "-c", str(config_file))
    assert result.exit_code == 1, result.output
    assert "source hf-papers" in result.output
    assert not list(tmp_path.glob("outbox/*.eml"))


def test_status_shows_runs_and_digests(config_file):
    assert run("status", "-c", str(config_file)).output.startswith("no state yet")
    run("send-now", "-c", str(config_file), "--date", "2026-06-12")
    result = run("status", "-c", str(config_file))
    assert result.exit_code == 0, result.output
    assert "send-now" in result.output
    assert "ada@example.org: 2026-06-12 sent" in result.output


@pytest.mark.parametrize(
    "command", ["run", "status", "check", "send-now", "preview", "show", "explain", "serve"]
)
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "--config" in result.output


def test_the_demo_has_help():
    result = run("demo", "--help")
    assert result.exit_code == 0 and "--dir" in result.output and "no network" in result.output


def test_run_without_a_config_says_so_and_exits_2():
    result = run("run")
    assert result.exit_code == 2
    assert "digest.toml" in result.output and "not found" in result.output


def test_example_config_dry_run_on_a_local_page_writes_a_digest(tmp_path):
    """What the README promises a new user, on a saved copy of the HF page."""
    page = Path(__file__).parent / "fixtures" / "hf-pages" / "papers_2026-06-12_sotawhat.html"
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'url = "https://huggingface.co/papers"', f'url = "{page}"'
    )
    config = tmp_path / "config.example.toml"
    config.write_text(text, encoding="utf-8")
    result = run("send-now", "-c", str(config), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "ada@example.org" in result.output and "dry-run, 10 papers" in result.output
    (html,) = [line.split("open ", 1)[1] for line in result.output.splitlines() if "open " in line]
    assert "EvoArena" in Path(html).read_text(encoding="utf-8")
    assert not (tmp_path / "outbox").exists() and not (tmp_path / "digest.sqlite3").exists()


def test_check_connect_reaches_sources_and_smtp(tmp_path, http_server, smtp_server):
    http_server.serve("/papers", hf_page(hf_items()[:3]), content_type="text/html")
    config = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": http_server.url("/papers")}],
        subscribers=[{"email": "ada@example.org"}],
        delivery={
            "method": "smtp",
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
        },
    )
    result = run("check", "-c", str(config), "--connect")
    assert result.exit_code == 0, result.output
    assert "source hf-papers: ok, 3 papers" in result.output
    assert f"smtp 127.0.0.1:{smtp_server.port}: ok" in result.output
    assert smtp_server.messages == []

    http_server.serve("/papers", "<html>gone</html>", status=404, content_type="text/html")
    smtp_server.stop()
    result = run("check", "-c", str(config), "--connect")
    assert result.exit_code == 1
    assert "source hf-papers:" in result.output and "404" in result.output
    assert "smtp 127.0.0.1" in result.output
