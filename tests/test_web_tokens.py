"""Signed link tokens, the links a digest carries, and the [web] config."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from digest.config import WebConfig, load_config, parse_config
from digest.errors import ConfigError
from digest.web.links import digest_links, unsubscribe_url
from digest.web.tokens import (
    MAX_TOKEN_CHARS,
    InvalidToken,
    SubscriberIndex,
    make_token,
    read_token,
    require_secret,
    subscriber_ref,
    token_ref,
)

SECRET = b"s" * 40
OTHER_SECRET = b"t" * 40
EMAILS = ["ada@example.org", "Bob@Example.org"]


def known(secret: bytes = SECRET) -> SubscriberIndex:
    return SubscriberIndex(secret, EMAILS)


def _raw(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_a_token_round_trips_with_its_purpose_reader_and_subject():
    token = make_token(SECRET, "more", "ada@example.org", "2606.00467")
    claim = read_token(SECRET, token, ("more", "less"), known())
    assert (claim.purpose, claim.email, claim.subject) == ("more", "ada@example.org", "2606.00467")
    assert len(token) < 64 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )


def test_the_email_is_matched_case_insensitively_and_given_as_the_config_spells_it():
    token = make_token(SECRET, "unsubscribe", "bob@example.org")
    assert read_token(SECRET, token, ("unsubscribe",), known()).email == "Bob@Example.org"


def test_the_token_does_not_carry_the_email_in_clear():
    token = make_token(SECRET, "unsubscribe", "ada@example.org")
    assert b"ada" not in _raw(token) and "ada" not in token


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t[:-1], id="cut short"),
        pytest.param(lambda t: t + "A", id="one more char"),
        pytest.param(lambda t: t[:10] + ("B" if t[10] != "B" else "C") + t[11:], id="one char"),
        pytest.param(lambda t: t.replace("-", "+").replace("_", "/") + "+", id="not url-safe"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "A" * (MAX_TOKEN_CHARS + 1), id="too long"),
        pytest.param(lambda t: t + "%00", id="NUL"),
    ],
)
def test_a_tampered_or_malformed_token_is_refused(mangle):
    token = make_token(SECRET, "more", "ada@example.org", "2606.00467")
    with pytest.raises(InvalidToken):
        read_token(SECRET, mangle(token), ("more", "less"), known())


def test_changing_the_subject_breaks_the_signature():
    raw = _raw(make_token(SECRET, "more", "ada@example.org", "2606.00467"))
    raw[-1] = ord("8")  # 2606.00468
    with pytest.raises(InvalidToken):
        read_token(SECRET, _token(raw), ("more",), known())


def test_a_token_for_one_reader_never_works_for_another():
    ada = _raw(make_token(SECRET, "unsubscribe", "ada@example.org"))
    bob = _raw(make_token(SECRET, "unsubscribe", "bob@example.org"))
    # Ada's MAC with Bob's reference (and the other way round): refused.
    forged = ada[:2] + bob[2:11] + ada[11:]
    with pytest.raises(InvalidToken):
        read_token(SECRET, _token(forged), ("unsubscribe",), known())
    forged = bob[:2] + ada[2:11] + bob[11:]
    with pytest.raises(InvalidToken):
        read_token(SECRET, _token(forged), ("unsubscribe",), known())


def test_a_token_for_another_purpose_is_refused():
    view = make_token(SECRET, "view", "ada@example.org", "2026-06-12")
    with pytest.raises(InvalidToken):
        read_token(SECRET, view, ("unsubscribe",), known())
    # Same bytes with the purpose byte changed: the MAC covers the purpose.
    raw = _raw(make_token(SECRET, "more", "ada@example.org", "2606.00467"))
    raw[1] = 3  # "less"
    with pytest.raises(InvalidToken):
        read_token(SECRET, _token(raw), ("more", "less"), known())


def test_rotating_the_secret_voids_old_tokens():
    token = make_token(SECRET, "unsubscribe", "ada@example.org")
    with pytest.raises(InvalidToken):
        read_token(OTHER_SECRET, token, ("unsubscribe",), known(OTHER_SECRET))


def test_a_reader_no_longer_configured_is_refused():
    token = make_token(SECRET, "unsubscribe", "gone@example.org")
    with pytest.raises(InvalidToken):
        read_token(SECRET, token, ("unsubscribe",), known())


def test_token_ref_names_the_reader_of_a_well_formed_token_only():
    token = make_token(SECRET, "unsubscribe", "cyd@example.org")
    assert token_ref(token, ("unsubscribe",)) == subscriber_ref(SECRET, "cyd@example.org")
    assert token_ref(token, ("more", "less")) is None  # another purpose
    assert token_ref(token[:20], ("unsubscribe",)) is None
    assert token_ref("A" * 40, ("unsubscribe",)) is None  # bad version byte


def test_the_reader_index_learns_the_readers_the_state_registers(tmp_path: Path):
    """Config readers keep their spelling; state readers are learnt from where the last look
    ended; a state replaced under the app is read whole (at most once a minute); nobody is
    forgotten."""
    from datetime import UTC, datetime

    from digest.store import Store
    from digest.web.readers import FULL_READ_SECONDS, ReaderIndex

    now = datetime(2026, 6, 12, tzinfo=UTC)
    ticks = [0.0]
    state = tmp_path / "state.sqlite3"
    index = ReaderIndex(SECRET, ["Bob@Example.org"], clock=lambda: ticks[0])

    def ref(email: str) -> bytes:
        return subscriber_ref(SECRET, email)

    index.learn_from(None, ref("cyd@example.org"))  # no state yet
    with Store.open(state) as store:
        store.register_subscribers(["bob@example.org", "Cyd@example.org"], now=now, lookback_days=1)
        assert store.reader_emails() == (["bob@example.org", "cyd@example.org"], 2)
        assert store.reader_emails(1) == (["cyd@example.org"], 2)
        assert store.reader_emails(2) == ([], 2)
        assert index.lookup(ref("cyd@example.org")) is None
        index.learn_from(store, ref("cyd@example.org"))
        assert index.lookup(ref("cyd@example.org")) == "cyd@example.org"
        assert index.lookup(ref("bob@example.org")) == "Bob@Example.org"
        store.set_unsubscribed("dan@example.org", True, now=now)  # a row of its own
        index.learn_from(store, ref("dan@example.org"))
        assert index.lookup(ref("dan@example.org")) == "dan@example.org"
    assert len(index) == 3
    # The state deleted and made anew (its positions start again, and its inode may be the
    # old one's): the whole list is read once the last full read is a minute old.
    for leftover in tmp_path.glob("state.sqlite3*"):
        leftover.unlink()
    with Store.open(state) as store:
        store.register_subscribers(["eve@example.org"], now=now, lookback_days=1)
        index.learn_from(store, ref("eve@example.org"))
        assert index.lookup(ref("eve@example.org")) is None  # read whole at 0 s already
        ticks[0] = FULL_READ_SECONDS
        index.learn_from(store, ref("eve@example.org"))
        assert index.lookup(ref("eve@example.org")) == "eve@example.org"
    assert index.lookup(ref("cyd@example.org")) == "cyd@example.org"  # links out keep working


def test_subjects_that_cannot_go_into_a_link_are_refused_when_made():
    with pytest.raises(ValueError):
        make_token(SECRET, "more", "ada@example.org", "x" * 301)
    with pytest.raises(ValueError):
        make_token(SECRET, "more", "ada@example.org", "a\nb")
    with pytest.raises(ValueError):
        make_token(SECRET, "delete-everything", "ada@example.org")


WEB = WebConfig(base_url="https://digest.example.org/pd")


def test_links_are_recognisable_by_prefix_and_signed_per_reader_and_paper():
    links = digest_links(WEB, SECRET, "ada@example.org", "2026-06-12", ["2606.00467", "2606.1"])
    assert links.view.startswith("https://digest.example.org/pd/v/")
    assert set(links.papers) == {"2606.00467", "2606.1"}
    more, less = links.papers["2606.00467"].more, links.papers["2606.00467"].less
    assert more.startswith("https://digest.example.org/pd/f/") and less.startswith(
        "https://digest.example.org/pd/f/"
    )
    assert len({more, less, links.papers["2606.1"].more}) == 3
    claim = read_token(SECRET, less.rsplit("/", 1)[1], ("more", "less"), known())
    assert (claim.purpose, claim.subject) == ("less", "2606.00467")
    url = unsubscribe_url(WEB, SECRET, "ada@example.org")
    assert url.startswith("https://digest.example.org/pd/u/")
    assert url != unsubscribe_url(WEB, SECRET, "bob@example.org")


def test_a_paper_id_too_long_for_a_link_gets_no_feedback_links():
    long_id = "https://example.org/" + "x" * 400
    links = digest_links(WEB, SECRET, "ada@example.org", "2026-06-12", [long_id, "2606.00467"])
    assert list(links.papers) == ["2606.00467"]


# --- config ----------------------------------------------------------------------------------


def _config(web: dict) -> dict:
    return {"web": web, "subscriber": [{"email": "ada@example.org"}]}


def test_web_config_defaults_and_values(tmp_path: Path):
    config = parse_config(_config({"base_url": "https://digest.example.org/"}), tmp_path / "d.toml")
    assert config.web == WebConfig(base_url="https://digest.example.org")
    assert config.web.listen == "127.0.0.1:8080" and config.web.secret_env == "DIGEST_WEB_SECRET"
    config = parse_config(
        _config({"base_url": "http://localhost:9000", "listen": "[::1]:9000", "secret_env": "X"}),
        tmp_path / "d.toml",
    )
    assert config.web is not None
    assert (config.web.listen_host, config.web.listen_port, config.web.listen) == (
        "::1",
        9000,
        "[::1]:9000",
    )
    assert parse_config({}, tmp_path / "d.toml").web is None


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ({}, "base_url is missing"),
        ({"base_url": "http://digest.example.org"}, "must be an https:// URL"),
        ({"base_url": "https://digest.example.org/?a=1"}, "without query or fragment"),
        ({"base_url": "https://digest.example.org/#x"}, "without query or fragment"),
        ({"base_url": "https://user@digest.example.org"}, "without query or fragment"),
        ({"base_url": "javascript:alert(1)"}, "without query or fragment"),
        ({"base_url": "https://x.org", "listen": "8080"}, "is not host:port"),
        ({"base_url": "https://x.org", "listen": "127.0.0.1:99999"}, "is not host:port"),
        ({"base_url": "https://x.org", "listen": "127.0.0.1:0"}, "is not host:port"),
        ({"base_url": "https://x.org", "secret_env": "A-B"}, "not an environment variable"),
        ({"base_url": "https://x.org", "secret": "hunter2"}, "must not be in the config file"),
        ({"base_url": "https://x.org", "baseurl": "x"}, "unknown key 'baseurl'"),
    ],
)
def test_bad_web_config_is_an_error_naming_the_key(tmp_path: Path, web: dict, message: str):
    with pytest.raises(ConfigError) as info:
        parse_config(_config(web), tmp_path / "d.toml")
    assert message in str(info.value) and "[web]" in str(info.value)


def test_web_and_a_hand_made_unsubscribe_url_do_not_mix(tmp_path: Path):
    data = _config({"base_url": "https://x.org"})
    data["digest"] = {"unsubscribe_url": "https://x.org/unsub"}
    with pytest.raises(ConfigError, match="unsubscribe_url and \\[web\\]"):
        parse_config(data, tmp_path / "d.toml")


def test_the_secret_comes_from_the_environment_and_must_be_long(monkeypatch, tmp_path: Path):
    web = WebConfig(base_url="https://x.org", secret_env="PD_TEST_SECRET")
    monkeypatch.delenv("PD_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"\$PD_TEST_SECRET is not set") as info:
        require_secret(web)
    assert "secrets.token_urlsafe" in str(info.value)
    monkeypatch.setenv("PD_TEST_SECRET", "short")
    with pytest.raises(ConfigError, match="too short"):
        require_secret(web)
    monkeypatch.setenv("PD_TEST_SECRET", "x" * 32)
    assert require_secret(web) == b"x" * 32


def test_the_example_config_still_loads(tmp_path: Path):
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    load_config(example)
