import re
from dataclasses import fields, replace
from datetime import date, time
from pathlib import Path

import pytest

from digest.config import (
    DEFAULT_HF_PAGE,
    DeliveryConfig,
    DigestSettings,
    SourceConfig,
    Subscriber,
    WebConfig,
    load_config,
    resolve_config_path,
)
from digest.config.schema import SETTING
from digest.errors import ConfigError
from digest.location import StateLocation
from digest.schedule import Cadence

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_example_config_loads_with_embedded_defaults():
    config = load_config(EXAMPLE)
    assert config.delivery.method == "outbox"
    assert config.delivery.outbox == EXAMPLE.parent / "outbox"
    assert config.digest.state.path == EXAMPLE.parent / "digest.sqlite3"
    assert [s.type for s in config.sources] == ["hf-papers"]
    (ada,) = config.subscribers
    assert ada.keywords["language model"] == 3
    assert ada.send_at == time(7, 30) and ada.timezone == "Europe/Berlin"
    assert ada.max_papers == 10


def test_minimal_config_gets_defaults(tmp_path):
    config = load_config(write(tmp_path, '[[subscriber]]\nemail = "a@example.org"\n'))
    assert config.sources[0].type == "hf-papers"
    assert config.sources[0].url == "https://huggingface.co/papers"
    assert config.delivery.method == "outbox"
    sub = config.subscribers[0]
    assert sub.keywords == {} and sub.timezone == "UTC" and sub.send_at == time(7, 0)
    assert sub.max_papers == 15


def test_keyword_list_means_weight_one_and_subscriber_inherits_digest_defaults(tmp_path):
    config = load_config(
        write(
            tmp_path,
            '[digest]\ntimezone = "Asia/Tokyo"\nsend_at = "06:15"\nmax_papers = 4\n'
            '[[subscriber]]\nemail = "a@example.org"\nkeywords = ["GNN", "diffusion"]\n',
        )
    )
    sub = config.subscribers[0]
    assert sub.keywords == {"GNN": 1.0, "diffusion": 1.0}
    assert (sub.timezone, sub.send_at, sub.max_papers) == ("Asia/Tokyo", time(6, 15), 4)


def test_smtp_host_implies_smtp_and_port_follows_security(tmp_path):
    config = load_config(
        write(tmp_path, '[delivery]\nhost = "mail.example.org"\nsecurity = "tls"\n')
    )
    assert config.delivery.method == "smtp"
    assert config.delivery.port == 465


def test_password_comes_from_environment(tmp_path, monkeypatch):
    config = load_config(
        write(
            tmp_path,
            '[delivery]\nhost = "m.example.org"\nusername = "u"\npassword_env = "DIGEST_SMTP_PASSWORD"\n',
        )
    )
    assert config.delivery.password() is None
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "s3cret")
    assert config.delivery.password() == "s3cret"


def test_local_source_path_is_relative_to_the_config(tmp_path):
    config = load_config(write(tmp_path, '[[source]]\ntype = "hf-papers"\nurl = "page.html"\n'))
    assert config.sources[0].url == str(tmp_path / "page.html")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[digest]\nmax_paper = 3\n",
            "[digest]: unknown key 'max_paper' (fix: did you mean 'max_papers'?)",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\nkeyword = ["x"]\n',
            "[[subscriber]] #1 (a@example.org): unknown key 'keyword'",
        ),
        (
            '[[subscriber]]\nemail = "not-an-email"\n',
            "[[subscriber]] #1: email = 'not-an-email' is not an email address",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\nsend_at = "7am"\n',
            "send_at = '7am' is not a time",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\nsend_at = "24:00"\n',
            "send_at = '24:00' is not a time",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\ntimezone = "Mars/Olympus"\n',
            "timezone = 'Mars/Olympus' is not a known time zone",
        ),
        (
            '[delivery]\nhost = "m.example.org"\nport = 70000\n',
            "[delivery]: port = 70000 is out of range",
        ),
        ('[delivery]\nhost = "m.example.org"\nport = "587"\n', "port must be a whole number"),
        (
            '[delivery]\nhost = "m.example.org"\npassword = "x"\n',
            "password must not be in the config file",
        ),
        (
            '[delivery]\nhost = "m.example.org"\nsecurity = "ssl"\n',
            "security = 'ssl' is not one of starttls, tls, none",
        ),
        ('[delivery]\nmethod = "smtp"\n', 'method = "smtp" needs host'),
        (
            '[[source]]\ntype = "rss"\nurl = "https://x.org/f"\n',
            "[[source]] #1: type = 'rss' is not one of hf-papers, hf-api, feed",
        ),
        ('[[source]]\ntype = "feed"\n', "[[source]] #1: url is missing"),
        (
            '[[subscriber]]\nemail = "a@example.org"\nkeywords = { GNN = -1 }\n',
            "weight of 'GNN' must be a positive number",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\n[[subscriber]]\nemail = "A@example.org"\n',
            "is listed twice",
        ),
        ('[digest]\nfrom = "nobody"\n', "from = 'nobody' is not an email address"),
        ("[digest\n", "invalid TOML"),
        ('colour = "blue"\n', "top level: unknown key 'colour'"),
        (
            '[[subscriber]]\nemail = "a@example.org"\nfrequency = "monthly"\n',
            "(a@example.org): frequency = 'monthly' is not one of daily, weekly, paused (fix: set "
            'frequency = "daily", or "weekly" with weekday = "mon"',
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\nfrequency = "paused"\n',
            'frequency = "paused" needs the date it ends (fix: add paused_until = "YYYY-MM-DD"',
        ),
        ('[[subscriber]]\nemail = "a@example.org"\nfrequency = 7\n', "frequency must be a string"),
        (
            '[[subscriber]]\nemail = "a@example.org"\nfrequency = "weekly"\nweekday = "funday"\n',
            "weekday = 'funday' is not a day of the week (fix: write one of 'mon', 'tue', 'wed', "
            "'thu', 'fri', 'sat', 'sun')",
        ),
        ('[[subscriber]]\nemail = "a@example.org"\nweekday = "m"\n', "is not a day of the week"),
        (
            '[[subscriber]]\nemail = "a@example.org"\npaused_until = "24.12.2026"\n',
            "paused_until = '24.12.2026' is not a date (fix: write it as \"YYYY-MM-DD\"",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\npaused_until = "2026-02-30"\n',
            "paused_until = '2026-02-30' is not a date",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\npaused_until = 2026-12-24T10:00:00\n',
            "paused_until = datetime.datetime(2026, 12, 24, 10, 0) is not a date",
        ),
        (
            '[[subscriber]]\nemail = "a@example.org"\nfrequncy = "weekly"\n',
            "did you mean 'frequency'?",
        ),
    ],
)
def test_bad_config_is_one_line_naming_key_and_place(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    assert expected in message
    assert message.startswith("digest.toml: ")


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="copy config.example.toml to digest.toml"):
        load_config(tmp_path / "nope.toml")


def test_config_path_resolution(monkeypatch):
    assert resolve_config_path("x.toml") == Path("x.toml")
    assert resolve_config_path(None) == Path("digest.toml")
    monkeypatch.setenv("DIGEST_CONFIG", "/etc/digest.toml")
    assert resolve_config_path(None) == Path("/etc/digest.toml")


def test_templates_folder_is_relative_to_the_config_and_must_exist(tmp_path):
    (tmp_path / "my-templates").mkdir()
    config = load_config(write(tmp_path, '[digest]\ntemplates = "my-templates"\n'))
    assert config.digest.templates == tmp_path / "my-templates"
    assert load_config(write(tmp_path, "[digest]\n")).digest.templates is None
    message = error_of(tmp_path, '[digest]\ntemplates = "nowhere"\n')
    assert "[digest]" in message and "templates = 'nowhere'" in message and "fix:" in message


def test_like_accepts_ids_and_urls_and_names_a_bad_entry(tmp_path):
    from digest.config import DEFAULT_MIN_SCORE

    def load(like, **extra):
        path = tmp_path / "digest.toml"
        lines = ["[[subscriber]]", 'email = "ada@example.org"', f"like = {like}"]
        lines += [f"{k} = {v}" for k, v in extra.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return load_config(path)

    config = load(
        '["2606.00467", "https://arxiv.org/abs/2606.00467v2", "https://huggingface.co/papers/2606.13681"]'
    )
    [sub] = config.subscribers
    assert sub.like == ("2606.00467", "2606.13681")
    assert sub.min_score == DEFAULT_MIN_SCORE
    assert load("[]", min_score=0.5).subscribers[0].min_score == 0.5
    with pytest.raises(ConfigError, match="like: 'my favourite paper' is not an arXiv id"):
        load('["my favourite paper"]')


# --- each key declared once (digest/config/schema.py) ----------------------------------------

TABLES = {
    "[digest]": DigestSettings,
    "[[source]]": SourceConfig,
    "[delivery]": DeliveryConfig,
    "[[subscriber]]": Subscriber,
    "[web]": WebConfig,
}


def declared_keys(cls: type) -> set[str]:
    return {f.metadata[SETTING].key or f.name for f in fields(cls) if SETTING in f.metadata}


def test_defaults_on_load_are_the_declared_ones(tmp_path):
    config = load_config(write(tmp_path, '[[subscriber]]\nemail = "a@example.org"\n'))
    assert config.digest == DigestSettings(state=StateLocation(path=tmp_path / "digest.sqlite3"))
    assert config.delivery == DeliveryConfig(outbox=tmp_path / "outbox")
    assert config.sources == (SourceConfig("hf-papers", DEFAULT_HF_PAGE, "hf-papers"),)
    assert config.subscribers == (Subscriber(email="a@example.org"),)


def test_a_subscriber_inherits_digest_keys_with_their_bounds(tmp_path):
    inherited = {"timezone", "send_at", "max_papers", "min_score", "upvote_boost"}
    digest_fields = {f.name: f for f in fields(DigestSettings)}
    for f in fields(Subscriber):
        if f.name in inherited:
            here, there = f.metadata[SETTING], digest_fields[f.name].metadata[SETTING]
            assert (f.default, replace(here, inherit=False)) == (
                digest_fields[f.name].default,
                there,
            )
    assert {f.name for f in fields(Subscriber) if f.metadata[SETTING].inherit} == inherited
    for table in ("[digest]", '[[subscriber]]\nemail = "a@example.org"'):
        assert "max_papers = 501 is out of range (1 to 500)" in error_of(
            tmp_path, f"{table}\nmax_papers = 501\n"
        )
    config = load_config(
        write(
            tmp_path,
            '[digest]\nmin_score = 0.5\nupvote_boost = 2\n[[subscriber]]\nemail = "a@example.org"\n'
            '[[subscriber]]\nemail = "b@example.org"\nmin_score = 0.1\n',
        )
    )
    a, b = config.subscribers
    assert (a.min_score, a.upvote_boost, b.min_score, b.upvote_boost) == (0.5, 2.0, 0.1, 2.0)


def test_every_declared_key_is_in_the_example_and_nothing_else():
    text = EXAMPLE.read_text(encoding="utf-8")
    parts = re.split(r"^#? ?(\[\[?[a-z]+\]\]?)\s*$", text, flags=re.M)
    for header, cls in TABLES.items():
        body = "".join(parts[i + 1] for i, part in enumerate(parts) if part == header)
        written = set(re.findall(r"^#? ?([a-z_]+) = ", body, flags=re.M))
        assert written == declared_keys(cls), header


def test_an_unknown_key_names_every_known_one_when_nothing_is_close(tmp_path):
    message = error_of(tmp_path, '[web]\nbase_url = "https://x.org"\nzzz = 1\n')
    assert (
        "[web]: unknown key 'zzz' (fix: known keys: allowed_domains, base_url, listen, "
        "profile_edit, secret_env, signup)" in message
    )


def test_the_place_names_the_subscriber_for_every_key(tmp_path):
    text = (
        '[[subscriber]]\nemail = "bob@example.org"\n'
        '[[subscriber]]\nemail = "ada@example.org"\nmin_score = 3\n'
    )
    assert (
        "digest.toml: [[subscriber]] #2 (ada@example.org): min_score = 3 must be at most 1"
        in error_of(tmp_path, text)
    )


def test_bound_fix_text_is_kept(tmp_path):
    message = error_of(tmp_path, "[digest]\ncatch_up_hours = 0\n")
    assert "[digest]: catch_up_hours = 0 must be above 0 (fix: e.g. catch_up_hours = 12" in message


def test_how_often_a_reader_gets_a_digest(tmp_path):
    text = (
        '[[subscriber]]\nemail = "a@example.org"\n'
        '[[subscriber]]\nemail = "b@example.org"\nfrequency = "Weekly"\nweekday = "FRIDAY"\n'
        '[[subscriber]]\nemail = "c@example.org"\nfrequency = "weekly"\nweekday = "sun"\n'
        "paused_until = 2026-12-24\n"
        '[[subscriber]]\nemail = "d@example.org"\npaused_until = " 2026-12-24 "\n'
    )
    a, b, c, d = load_config(write(tmp_path, text)).subscribers
    assert (a.frequency, a.weekday, a.paused_until) == ("daily", "mon", None)
    assert (b.frequency, b.weekday, b.paused_until) == ("weekly", "fri", None)
    assert (c.frequency, c.weekday, c.paused_until) == ("weekly", "sun", date(2026, 12, 24))
    assert d.paused_until == date(2026, 12, 24) and d.frequency == "daily"
    assert a.cadence == Cadence() and b.cadence == Cadence(4)
    assert c.cadence == Cadence(6, date(2026, 12, 24))
    assert d.cadence == Cadence(None, date(2026, 12, 24))
