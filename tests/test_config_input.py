"""Issue 25, the config's part: no single bad input stops the service. Each bad input is a
one-line ConfigError naming the problem and the fix, through load_config and through
`digest check` (exit 2, never "internal error")."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import DeliveryConfig, check_secrets, load_config, parse_config
from digest.errors import EXIT_USAGE, ConfigError

ADA = '[[subscriber]]\nemail = "ada@example.org"\n'
DEEP = 100_000


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "digest.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message and message.startswith("digest.toml: ")
    return message


def check(tmp_path: Path, text: str | bytes) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "-c", str(write(tmp_path, text))])
    return result.exit_code, result.output


def refused_by_check(tmp_path: Path, text: str | bytes, *, loads: bool = False) -> str:
    """The one error line of `digest check` (after the summary when the config loads)."""
    code, output = check(tmp_path, text)
    assert code == EXIT_USAGE, output
    assert "internal error" not in output and "Traceback" not in output
    *summary, last = output.splitlines()
    assert last.startswith("digest: error: ") and bool(summary) == loads
    return last


# 1: nesting deeper than the TOML reader can go -------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * DEEP + "]" * DEEP + "\n",
        "a = " + "{ b = " * DEEP + "1" + " }" * DEEP + "\n",
        ADA + "keywords = " + "[" * DEEP + "]" * DEEP + "\n",
    ],
    ids=["arrays", "inline-tables", "in-a-subscriber"],
)
def test_nesting_too_deep_is_a_config_error(tmp_path, text):
    message = error_of(tmp_path, text)
    assert "nested too deeply" in message and "fix:" in message
    assert "nested too deeply" in refused_by_check(tmp_path, text)


def test_a_value_nested_deeply_but_readable_is_named_in_one_short_line(tmp_path):
    nested: list[object] = []
    for _ in range(5_000):  # deeper than repr() can go
        nested = [nested]
    with pytest.raises(ConfigError) as info:
        parse_config({"digest": {"from": nested}}, tmp_path / "digest.toml")
    assert "from must be a string, not a list nested too deeply" in str(info.value)


# 2: a byte order mark ------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_dropped(tmp_path):
    text = '[digest]\nmax_papers = 4\nfrom = "Zoë <d@example.org>"\n' + ADA
    config = load_config(write(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8")))
    assert config.digest.max_papers == 4 and config.digest.from_addr == "Zoë <d@example.org>"
    code, output = check(tmp_path, b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert code == 0 and "OK" in output


def test_other_encodings_still_say_utf8(tmp_path):
    message = error_of(tmp_path, '[digest]\nfrom = "Zoë <d@example.org>"\n'.encode("latin-1"))
    assert "not UTF-8 text" in message


# 3: one sender -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a@example.org, b@example.org", "is more than one address"),
        ("Paper Digest <a@example.org>, b@example.org", "is more than one address"),
        ("Papers, Digest <d@example.org>", "is more than one address"),
        ("team: a@example.org;", "is an address group"),
        ("Paper Digest <d@example.org> junk", "is not an email address"),
        ("Paper Digest", "is not an email address"),
    ],
)
def test_from_must_be_one_address(tmp_path, value, problem):
    text = f"[digest]\nfrom = '{value}'\n"
    message = error_of(tmp_path, text)
    assert f"[digest]: from = {value!r} {problem}" in message and "fix:" in message
    assert problem in refused_by_check(tmp_path, text)


def test_the_fix_for_a_comma_in_the_name_works(tmp_path):
    message = error_of(tmp_path, "[digest]\nfrom = 'Papers, Digest <d@example.org>'\n")
    fix = message.split("(fix: ", 1)[1]
    written = fix[fix.index('"') : fix.rindex('"') + 1]  # the TOML string the fix shows
    config = load_config(write(tmp_path, f"[digest]\nfrom = {written}\n"))
    assert config.digest.from_addr == '"Digest, Papers" <digest@example.org>'
    assert config.digest.from_email == "digest@example.org"


@pytest.mark.parametrize(
    "value",
    [
        "Paper Digest <d@example.org>",
        "d@example.org",
        '"Digest, Papers" <d@example.org>',
        "Zoë <d@x.org>",
    ],
)
def test_one_address_with_or_without_a_name_is_accepted(tmp_path, value):
    config = load_config(write(tmp_path, f"[digest]\nfrom = '{value}'\n"))
    assert config.digest.from_addr == value


# 4: real IANA zones only ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["localtime", "Factory", "posixrules", "/etc/localtime", "../zoneinfo/UTC", "utc"]
)
def test_timezone_must_be_an_iana_name(tmp_path, zone):
    for text in (f'[digest]\ntimezone = "{zone}"\n', ADA + f'timezone = "{zone}"\n'):
        message = error_of(tmp_path, text)
        assert f"timezone = {zone!r} is not a known time zone" in message
        assert 'use an IANA name such as "UTC" or "Europe/Berlin"' in message
        assert "is not a known time zone" in refused_by_check(tmp_path, text)


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Europe/Berlin", "US/Pacific", "Etc/GMT+5"])
def test_iana_names_and_their_links_are_accepted(tmp_path, zone):
    config = load_config(write(tmp_path, ADA + f'timezone = "{zone}"\n'))
    assert config.subscribers[0].tz.key == zone


# 5: sizes bounded at load --------------------------------------------------------------------


def _list(n: int, width: int = 5) -> str:
    return "[" + ", ".join(f'"t{i:0{width}}"' for i in range(n)) + "]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ADA + 'keywords = ["' + "x" * 1_000_000 + '"]\n',
            "keywords: 'xxxx",
        ),
        (ADA + 'keywords = ["' + "x" * 101 + '"]\n', "is 101 characters long; at most 100"),
        (ADA + 'keywords = { "' + "x" * 101 + '" = 2 }\n', "is 101 characters long; at most 100"),
        (ADA + f"keywords = {_list(201)}\n", "keywords has 201 entries; at most 200"),
        (ADA + 'exclude = ["' + "x" * 101 + '"]\n', "exclude: 'xxx"),
        (ADA + f"exclude = {_list(201)}\n", "exclude has 201 entries; at most 200"),
        (ADA + 'authors = ["' + "x" * 101 + '"]\n', "authors: 'xxx"),
        (ADA + f"authors = {_list(201)}\n", "authors has 201 entries; at most 200"),
        (ADA + f"like = {_list(1001)}\n", "like has 1,001 entries; at most 1,000"),
        (ADA + 'like = ["https://x.org/' + "a/" * 100_000 + '"]\n', "at most 200"),
        (ADA + 'name = "' + "n" * 101 + '"\n', "name = 'nnn"),
        ('[[subscriber]]\nemail = "' + "a" * 250 + '@example.org"\n', "at most 254"),
        ('[[source]]\ntype = "feed"\nurl = "f.xml"\nname = "' + "n" * 101 + '"\n', "at most 100"),
        ('[digest]\nunsubscribe_url = "https://x.org/' + "u" * 300 + '"\n', "at most 300"),
        (ADA + 'keywords = { "gnn" = 1e308 }\n', "keywords: 'gnn' = 1e+308 must be at most 100"),
    ],
    ids=[
        "keyword-1M",
        "keyword-101",
        "keyword-table-101",
        "keywords-201",
        "exclude-101",
        "exclude-201",
        "author-101",
        "authors-201",
        "likes-1001",
        "like-long",
        "name",
        "email",
        "source-name",
        "unsubscribe-url",
        "weight",
    ],
)
def test_sizes_are_bounded_and_the_error_names_the_bound(tmp_path, text, expected):
    message = error_of(tmp_path, text)
    assert expected in message and len(message) < 400
    assert expected in refused_by_check(tmp_path, text)


def test_sizes_a_reader_meets_are_accepted(tmp_path):
    text = (
        ADA
        + f"keywords = {_list(200, 95)}\nexclude = {_list(200, 95)}\n"
        + f"authors = {_list(200, 95)}\nlike = {['2606.00467'] * 1000}\n"
        + 'name = "'
        + "n" * 100
        + '"\n'
    )
    [sub] = load_config(write(tmp_path, text)).subscribers
    assert len(sub.keywords) == len(sub.exclude) == len(sub.authors) == 200
    assert max(len(k) for k in sub.keywords) == 96 and sub.like == ("2606.00467",)


# 6: [digest] semantic ------------------------------------------------------------------------


def test_semantic_defaults_to_true_and_takes_a_bool(tmp_path):
    assert load_config(write(tmp_path, ADA)).digest.semantic is True
    assert load_config(write(tmp_path, "[digest]\nsemantic = false\n")).digest.semantic is False
    code, output = check(tmp_path, "[digest]\nsemantic = false\n" + ADA)
    assert code == 0, output
    message = error_of(tmp_path, '[digest]\nsemantic = "no"\n')
    assert "[digest]: semantic must be true or false, not 'no'" in message
    assert "semantic must be true or false" in refused_by_check(
        tmp_path, "[digest]\nsemantic = 0\n"
    )
    assert "did you mean 'semantic'?" in error_of(tmp_path, "[digest]\nsemantics = false\n")


# 7: the SMTP password, checked in one place ----------------------------------------------------

LOGIN = '[delivery]\nhost = "smtp.example.org"\nusername = "me"\npassword_env = "PD_TEST_SMTP"\n'


def test_smtp_password_comes_from_the_named_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PD_TEST_SMTP", "s3cret")
    config = load_config(write(tmp_path, LOGIN + ADA))
    assert config.delivery.smtp_password() == "s3cret"
    check_secrets(config)
    assert DeliveryConfig(method="smtp", host="h").smtp_password() is None  # no login


@pytest.mark.parametrize("value", [None, ""])
def test_a_login_without_its_password_is_one_config_error(tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("PD_TEST_SMTP", raising=False)
    else:
        monkeypatch.setenv("PD_TEST_SMTP", value)
    config = load_config(write(tmp_path, LOGIN + ADA))
    expected = (
        "[delivery]: $PD_TEST_SMTP is empty or not set, so the SMTP login as 'me' would fail "
        "(fix: export PD_TEST_SMTP=... (the SMTP password) before running digest)"
    )
    with pytest.raises(ConfigError) as info:
        config.delivery.smtp_password()
    assert str(info.value) == expected
    with pytest.raises(ConfigError) as info:
        check_secrets(config)  # today's message, with the file in front
    assert str(info.value) == "digest.toml: " + expected
    assert refused_by_check(tmp_path, LOGIN + ADA, loads=True).endswith(expected)


def test_a_username_without_password_env_is_refused_in_both_places(tmp_path):
    with pytest.raises(ConfigError, match="username is set but password_env is not"):
        DeliveryConfig(method="smtp", host="h", username="me").smtp_password()
    text = '[delivery]\nhost = "smtp.example.org"\nusername = "me"\n'
    assert "username is set but password_env is not" in refused_by_check(tmp_path, text)


def test_an_outbox_needs_no_password(tmp_path, monkeypatch):
    monkeypatch.delenv("PD_TEST_SMTP", raising=False)
    text = '[delivery]\nmethod = "outbox"\nusername = "me"\npassword_env = "PD_TEST_SMTP"\n'
    check_secrets(load_config(write(tmp_path, text + ADA)))
