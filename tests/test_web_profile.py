"""The profile page (digest.web.profile) through httpx.ASGITransport: who may use it, saving
with the config's rules, preview writes nothing, likes and their undo, imports, "send me my
link", and page edits surviving the sync of the config's readers."""

from __future__ import annotations

import asyncio
import base64
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.config import load_config
from digest.deliver import OutgoingMail, SendOutcome
from digest.models import Paper
from digest.store import Store
from digest.web.app import create_app
from digest.web.guard import CSP
from digest.web.links import PROFILE_LINK_DAYS, profile_url
from digest.web.tokens import make_token
from tests.support.helpers import write_config
from tests.support.webtools import (
    DAY1,
    SECRET,
    WebWorld,
    html_of,
    links_with_prefix,
    running_server,
    text_of,
)

NOW = datetime(2026, 6, 12, 9, 30, tzinfo=UTC)
BASE = "http://127.0.0.1:8080"
ADA = "ada@example.org"


def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile_edit: bool = True):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    path = write_config(
        tmp_path / "digest.toml",
        sources=[{"type": "hf-papers", "url": "papers.html"}],
        subscribers=[
            {"email": ADA, "keywords": {"graph neural network": 3}, "max_papers": 10},
            {"email": "bob@example.org"},
        ],
    )
    with path.open("a", encoding="utf-8") as f:
        f.write(f'[web]\nbase_url = "{BASE}"\nprofile_edit = {str(profile_edit).lower()}\n')
    return load_config(path)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = make_config(tmp_path, monkeypatch)
    with Store.open(config.digest.state) as store:
        store.sync_config_readers(config.subscribers, now=NOW, lookback_days=3, page_edits=True)
    return config


def call(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            return await http.request(method, url, **kwargs)

    return asyncio.run(go())


TODAY = NOW.date()


def link(config, email: str = ADA, issued: date = TODAY) -> str:
    return profile_url(config.web, SECRET.encode(), email, issued).removeprefix(BASE)


def unpack(path: str) -> bytes:
    token = path.removeprefix("/p/")
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def pack(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def form(**changes: str) -> dict[str, str]:
    values = {
        "keywords": "graph neural network = 3",
        "exclude": "",
        "authors": "",
        "max_papers": "10",
        "min_score": "0.3",
        "timezone": "UTC",
        "send_at": "07:00",
        "frequency": "daily",
        "weekday": "mon",
        "paused_until": "",
    }
    return values | changes


def reader(config, email: str = ADA):
    with Store.open(config.digest.state) as store:
        return store.active_readers([email])[0]


def test_the_page_shows_the_readers_interests_with_strict_headers(config):
    app = create_app(config, clock=lambda: NOW)
    response = call(app, "GET", link(config))
    assert response.status_code == 200
    assert "graph neural network = 3" in response.text
    assert ADA not in response.text and "a…@example.org" in response.text
    assert response.headers["content-security-policy"] == CSP
    assert "<script" not in response.text
    assert "set-cookie" not in response.headers


def test_forged_expired_and_other_purpose_tokens_are_refused(config):
    app = create_app(config, clock=lambda: NOW)
    good = link(config)
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    assert call(app, "GET", forged).status_code == 404
    unsub = "/p/" + make_token(SECRET.encode(), "unsubscribe", ADA)
    assert call(app, "GET", unsub).status_code == 404
    old = link(config, issued=NOW.date() - timedelta(days=PROFILE_LINK_DAYS + 1))
    expired = call(app, "GET", old)
    assert expired.status_code == 410 and "expired" in expired.text
    assert call(app, "POST", old, data=form(keywords="x")).status_code == 410
    # Bob's MAC under Ada's ref (and the other way round) is no one's link.
    ada, bob = (unpack(link(config, who)) for who in (ADA, "bob@example.org"))
    for ref_of, mac_of in ((ada, bob), (bob, ada)):
        assert call(app, "GET", "/p/" + pack(ref_of[:11] + mac_of[11:])).status_code == 404
    assert call(app, "GET", "/p/" + pack(ada)).status_code == 200
    assert reader(config).keywords == {"graph neural network": 3}


def test_saving_applies_from_the_next_digest_and_survives_the_config_sync(config):
    app = create_app(config, clock=lambda: NOW)
    response = call(
        app,
        "POST",
        link(config),
        data=form(keywords="diffusion model = 2\nvideo", frequency="weekly", weekday="fri"),
    )
    assert response.status_code == 200 and "Saved" in response.text
    edited = reader(config)
    assert edited.keywords == {"diffusion model": 2, "video": 1}
    assert (edited.frequency, edited.weekday, edited.max_papers) == ("weekly", "fri", 10)
    with Store.open(config.digest.state) as store:  # the next run syncs the config again
        store.sync_config_readers(config.subscribers, now=NOW, lookback_days=3, page_edits=True)
    assert reader(config).keywords == {"diffusion model": 2, "video": 1}
    with Store.open(config.digest.state) as store:  # profile_edit = false: the config wins
        store.sync_config_readers(config.subscribers, now=NOW, lookback_days=3)
    assert reader(config).keywords == {"graph neural network": 3}
    assert reader(config).frequency == "daily"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_papers", "0", "out of range (1 to 500)"),
        ("max_papers", "ten", "Write a whole number"),
        ("min_score", "2", "at most 1"),
        ("min_score", "nan", "not a finite number"),
        ("timezone", "Mars/Base", "not a known time zone"),
        ("send_at", "25:00", "not a time"),
        ("keywords", "x = 1e308", "at most 100"),
        ("keywords", "\n".join(f"k{i}" for i in range(201)), "at most 200 are allowed"),
        ("frequency", "hourly", "Choose daily or weekly"),
        ("paused_until", "tomorrow", "not a date"),
    ],
)
def test_invalid_input_is_shown_inline_and_nothing_is_saved(config, field, value, words):
    app = create_app(config, clock=lambda: NOW)
    before = reader(config)
    response = call(app, "POST", link(config), data=form(**{field: value}))
    assert response.status_code == 400
    assert "Nothing was saved" in response.text
    assert f'id="{field}-error"' in response.text and words in response.text
    assert reader(config) == before


def test_preview_ranks_todays_papers_for_the_edited_interests_and_writes_nothing(config):
    with Store.open(config.digest.state) as store:
        store.record_papers(
            [
                Paper(id="2606.00001", title="Diffusion models for video", abstract="video"),
                Paper(id="2606.00002", title="A graph neural network for molecules"),
            ],
            now=NOW,
        )
    state = Path(str(config.digest.state.path))
    before = state.read_bytes()
    app = create_app(config, clock=lambda: NOW)
    response = call(
        app, "POST", link(config) + "/preview", data=form(keywords="diffusion", min_score="0")
    )
    assert response.status_code == 200
    assert "Diffusion models for video" in response.text
    assert "A graph neural network for molecules" not in response.text
    assert "Not saved yet" in response.text
    assert reader(config).keywords == {"graph neural network": 3}
    assert state.read_bytes() == before


def test_config_readers_may_not_edit_when_profile_edit_is_off(tmp_path, monkeypatch):
    config = make_config(tmp_path, monkeypatch, profile_edit=False)
    app = create_app(config, clock=lambda: NOW)
    response = call(app, "GET", link(config))
    assert response.status_code == 403 and "ask whoever runs this digest" in response.text
    assert call(app, "POST", link(config), data=form(keywords="x")).status_code == 403


def test_likes_are_listed_and_undone(config):
    with Store.open(config.digest.state) as store:
        store.record_feedback(ADA, "2606.00467", "like", now=NOW)
    app = create_app(config, clock=lambda: NOW)
    page = call(app, "GET", link(config))
    assert "2606.00467" in page.text and "Undo" in page.text
    response = call(
        app, "POST", link(config) + "/unlike", data={"paper": "2606.00467", "kind": "like"}
    )
    assert response.status_code == 200 and "Taken back" in response.text
    with Store.open(config.digest.state) as store:
        assert store.feedback(ADA) == {}


def test_pasted_ids_become_likes_and_unknown_ones_are_listed(config):
    app = create_app(config, clock=lambda: NOW)
    pasted = "2606.00467\nhttps://arxiv.org/abs/2606.13681v2\nnot-an-id"
    response = call(app, "POST", link(config) + "/import", files={"ids": (None, pasted)})
    assert response.status_code == 200
    assert "2 papers added to your likes" in response.text and "not-an-id" in response.text
    with Store.open(config.digest.state) as store:
        assert store.feedback(ADA) == {"2606.00467": "like", "2606.13681": "like"}


BIB = """@article{x, title={Attention {Is} All You Need}, eprint={1706.03762},
archivePrefix={arXiv}, abstract={The dominant sequence transduction models...}}
@misc{y, title = "A book", publisher = {Nobody}}
"""


def test_a_bibtex_upload_becomes_likes_with_its_text_kept(config):
    app = create_app(config, clock=lambda: NOW)
    files = {"file": ("refs.bib", BIB.encode(), "application/x-bibtex")}
    response = call(app, "POST", link(config) + "/import", files=files)
    assert response.status_code == 200 and "1 paper added" in response.text
    assert "A book" in response.text
    with Store.open(config.digest.state) as store:
        assert store.feedback(ADA) == {"1706.03762": "like"}
        kept = store.imported_papers(["1706.03762"])["1706.03762"]
    assert kept.title == "Attention Is All You Need"
    assert kept.abstract.startswith("The dominant")


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("huge.bib", b"@misc{a, title={x}}\n" * 60_000, "larger than 1 MiB"),
        ("bin.bib", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
        ("deep.bib", b"@misc{a, title=" + b"{" * 5000 + b"}" * 5000 + b"}", "nests braces"),
        ("open.bib", b"@misc{a, title={x}", "not closed"),
        ("latin1.csv", "Title,Url\nCaf\xe9,x\n".encode("latin-1"), "not UTF-8"),
        ("wide.csv", b"Title," + b",".join(b"c%d" % i for i in range(10**5)) + b"\n", "columns"),
        ("notes.txt", b"hello", ".bib"),
    ],
)
def test_hostile_uploads_are_refused_with_a_clear_message(config, name, data, words):
    app = create_app(config, clock=lambda: NOW)
    response = call(app, "POST", link(config) + "/import", files={"file": (name, data)})
    assert response.status_code in (400, 413)
    assert words in response.text
    with Store.open(config.digest.state) as store:
        assert store.feedback(ADA) == {}


def test_a_zotero_csv_with_bom_and_quoted_fields_is_read(config):
    csv = (
        '\ufeff"Key","Item Type","Title","Abstract Note","Url","Extra"\n'
        '"K1","preprint","Graphs, ""quoted"", and =SUM(A1)","An abstract","https://arxiv.org/abs/2606.00467v1",""\n'
        '"K2","book","No id here","","",""\n'
        '"K3","preprint","Other","","","arXiv: 2606.13681"\n'
    ).encode()
    app = create_app(config, clock=lambda: NOW)
    response = call(app, "POST", link(config) + "/import", files={"file": ("z.csv", csv)})
    assert response.status_code == 200 and "2 papers added" in response.text
    assert "No id here" in response.text
    with Store.open(config.digest.state) as store:
        assert set(store.feedback(ADA)) == {"2606.00467", "2606.13681"}
        assert store.imported_papers(["2606.00467"])["2606.00467"].title.startswith("Graphs, ")


class Mails:
    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    async def deliver_stream(self, queue, *, on_attempt, on_outcome, stop=None) -> None:
        while (mail := await queue.get()) is not None:
            on_attempt(mail)
            self.sent.append(mail)
            on_outcome(SendOutcome(mail, "sent", 1))


def test_send_me_my_link_answers_the_same_and_mails_only_known_readers(config):
    mails = Mails()
    app = create_app(config, clock=lambda: NOW, mailer=mails)
    assert "Send me my link" in call(app, "GET", "/p").text
    known = call(app, "POST", "/p", data={"email": "ADA@example.org"})
    unknown = call(app, "POST", "/p", data={"email": "eve@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert [m.recipient for m in mails.sent] == [ADA]
    url = re.search(rb"http://\S+/p/[A-Za-z0-9_-]+", mails.sent[0].data)
    assert url is not None
    assert call(app, "GET", url.group().decode().removeprefix(BASE)).status_code == 200
    call(app, "POST", "/p", data={"email": ADA})  # again at once: not mailed again
    assert len(mails.sent) == 1


# --- over the wire: a received digest's link, a real server, the next send-now --------------


@pytest.fixture
def world(tmp_path, http_server, smtp_server, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    world = WebWorld(tmp_path, http_server, smtp_server)
    path = tmp_path / "profile.toml"
    world.config_for(["ada@example.org", "bob@example.org"], name=path.name)
    with path.open("a", encoding="utf-8") as f:
        f.write("profile_edit = true\n")  # [web] is the file's last table
    world.config = load_config(path)
    yield world
    world.sock.close()


def test_edits_from_a_received_digest_apply_from_the_next_digest(world):
    world.day(1, world.items[:12])
    [ada] = world.mails_to(ADA)
    [profile] = set(links_with_prefix(html_of(ada), world.base + "/p/"))
    assert links_with_prefix(text_of(ada), world.base + "/p/") == [profile]
    assert "Edit your interests" in html_of(ada)
    with running_server(world.config, world.sock, clock=lambda: DAY1):
        page = httpx.get(profile, timeout=10)
        assert page.status_code == 200 and "language model = 2" in page.text
        [view] = links_with_prefix(page.text, world.base + "/v/")  # the day's digest, online
        assert httpx.get(view, timeout=10).text == html_of(ada)
        saved = httpx.post(
            profile, data=form(keywords="video = 3", max_papers="8", min_score="0.3"), timeout=10
        )
        assert saved.status_code == 200 and "Saved" in saved.text
    report = world.day(2, world.items[12:40], keep_papers=True)
    by_email = {s.email: s for s in report.subscribers}
    ada_matched = {m for r in by_email[ADA].papers for m in r.matched}
    bob_matched = {m for r in by_email["bob@example.org"].papers for m in r.matched}
    assert ada_matched == {"video"}
    assert bob_matched - {"video"}, "bob's interests (the config's) are unchanged"


def test_without_profile_edit_the_footer_says_who_changes_interests(
    tmp_path, http_server, smtp_server, monkeypatch
):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    world = WebWorld(tmp_path, http_server, smtp_server)
    try:
        world.day(1, world.items[:6])
        [ada] = world.mails_to(ADA)
        assert not links_with_prefix(html_of(ada), world.base + "/p/")
        assert "To change your keywords, ask whoever runs this digest." in " ".join(
            text_of(ada).split()
        )
    finally:
        world.sock.close()


# --- the store's part, on each backend ---------------------------------------------------------


def test_page_edits_imported_papers_and_likes_in_the_state(tmp_path, state_url):
    from dataclasses import replace

    from digest.config import Subscriber
    from digest.store import ImportedPaper, StateLocation
    from digest.store.readers import edits_between

    base = Subscriber(email="cy@example.org", keywords={"graphs": 1.0}, max_papers=10)
    with Store.open(StateLocation.parse(state_url, tmp_path)) as store:
        store.save_readers([base], origin="signup", now=NOW, lookback_days=3)
        edited = replace(base, keywords={"video": 2.0}, frequency="weekly", weekday="fri")
        store.save_page_edits(edited, edits_between(base, edited), now=NOW)
        row = store.reader_row("CY@example.org")
        assert row is not None and (row.origin, row.active, row.unsubscribed) == (
            "signup",
            True,
            False,
        )
        assert row.reader == edited
        assert store.page_edits("cy@example.org") == {
            "keywords": {"video": 2.0},
            "frequency": "weekly",
            "weekday": "fri",
        }
        assert store.with_page_edits([base]) == [edited]
        store.save_imported_papers([ImportedPaper("2606.00467", "A title", "")], now=NOW)
        store.save_imported_papers(
            [ImportedPaper("2606.00467", "A title", "Its abstract")], now=NOW
        )
        store.save_imported_papers([ImportedPaper("2606.00467", "Other", "Other")], now=NOW)
        kept = store.imported_papers(["2606.00467", "2606.99999"])
        assert list(kept) == ["2606.00467"] and kept["2606.00467"].abstract == "Its abstract"
        store.record_feedback("cy@example.org", "2606.00467", "like", now=NOW)
        store.record_feedback("cy@example.org", "2606.00001", "dislike", now=NOW)
        assert sorted(store.feedback_with_titles("cy@example.org")) == [
            ("2606.00001", "dislike", ""),
            ("2606.00467", "like", "A title"),
        ]
        assert store.recent_digests("cy@example.org") == []
        assert store.reader_row("nobody@example.org") is None


def test_an_imported_paper_the_sources_never_listed_counts_as_a_liked_paper(tmp_path):
    from digest.rank.corpus import Corpus
    from digest.store import ImportedPaper

    with Store.open(tmp_path / "state.sqlite3") as store:
        store.save_imported_papers(
            [ImportedPaper("1706.03762", "Attention Is All You Need", "Transformers")], now=NOW
        )
        [paper] = Corpus(store, None, None).papers(["1706.03762", "2606.99999"])
    assert (paper.id, paper.title, paper.abstract) == (
        "1706.03762",
        "Attention Is All You Need",
        "Transformers",
    )


def test_a_post_with_fields_missing_is_answered_with_the_form_not_an_error(config):
    app = create_app(config, clock=lambda: NOW)
    for path in (link(config), link(config) + "/preview"):
        response = call(app, "POST", path, data={"keywords": "x"})
        assert response.status_code == 400 and "Nothing was saved" in response.text
    assert reader(config).keywords == {"graph neural network": 3}
