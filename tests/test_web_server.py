"""The web side against a real uvicorn server on 127.0.0.1, with the links taken from mails
that real runs sent to the real SMTP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.cli_inspect import preview_json
from digest.clock import utc_now
from digest.errors import ConfigError
from digest.run import Mode, RunOptions, send_now
from digest.status import render_status
from digest.store import Store
from digest.web.guard import CSP, RateLimiter
from digest.web.server import WebServerError, bind_socket, serve_web
from digest.web.tokens import make_token
from tests.support.run import deps
from tests.support.webtools import (
    DAY1,
    SECRET,
    WebWorld,
    html_of,
    links_with_prefix,
    running_server,
    text_of,
)


@pytest.fixture
def world(tmp_path, http_server, smtp_server, monkeypatch):
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    world = WebWorld(tmp_path, http_server, smtp_server)
    yield world
    world.sock.close()  # uvicorn closes it when it served; a test that did not serve leaves it


def one_click(url: str) -> httpx.Response:
    """What a mail provider does for RFC 8058: POST the List-Unsubscribe URL."""
    return httpx.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)


def list_unsubscribe_https(message) -> str:
    header = str(message["List-Unsubscribe"])
    [url] = [u for u in header.replace(" ", "").strip("<>").split(">,<") if u.startswith("http")]
    return url


def test_mails_carry_signed_links_and_one_click_headers(world):
    report = world.day(1, world.items[:12])
    assert [s.status for s in report.subscribers] == ["sent", "sent"]
    [ada] = world.mails_to("ada@example.org")
    assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = str(ada["List-Unsubscribe"])
    assert header.startswith(f"<{world.base}/u/") and "<mailto:" in header
    html = html_of(ada)
    assert links_with_prefix(html, world.base + "/u/") == [list_unsubscribe_https(ada)]
    assert len(set(links_with_prefix(html, world.base + "/v/"))) == 1
    feedback = links_with_prefix(html, world.base + "/f/")
    assert len(feedback) == 2 * report.subscribers[0].paper_count
    assert links_with_prefix(text_of(ada), world.base + "/f/") == feedback
    [bob] = world.mails_to("bob@example.org")
    assert not set(feedback) & set(links_with_prefix(html_of(bob), world.base + "/f/"))


def test_one_click_post_unsubscribes_and_the_next_run_skips_that_reader(world, smtp_server):
    world.day(1, world.items[:12])
    [ada] = world.mails_to("ada@example.org")
    with running_server(world.config, world.sock):
        response = one_click(list_unsubscribe_https(ada))
    assert response.status_code == 200 and "You're unsubscribed" in response.text
    with Store.open(world.config.digest.state) as store:
        assert list(store.unsubscribed()) == ["ada@example.org"]
        status = render_status(store, world.config, now=utc_now())
    assert "unsubscribed on the web (every run skips them):" in status
    assert "  ada@example.org at " in status

    report = world.day(2, world.items[12:24])
    by_email = {s.email: s for s in report.subscribers}
    assert by_email["ada@example.org"].status == "unsubscribed"
    assert by_email["bob@example.org"].status == "sent"
    assert report.exit_code == 0
    assert len(world.mails_to("ada@example.org")) == 1  # only day 1's
    assert len(world.mails_to("bob@example.org")) == 2


def test_gets_record_nothing(world):
    world.day(1, world.items[:12])
    [ada] = world.mails_to("ada@example.org")
    links = links_with_prefix(html_of(ada), world.base + "/")
    assert len(links) > 10
    with running_server(world.config, world.sock), httpx.Client(timeout=10) as client:
        for url in links:  # what a link scanner does
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["content-security-policy"] == CSP
            client.head(url)
    with Store.open(world.config.digest.state) as store:
        assert store.unsubscribed() == {}
        assert store.feedback("ada@example.org") == {}


def test_forged_tampered_and_other_readers_tokens_are_refused(world, smtp_server):
    world.day(1, world.items[:12])
    [ada] = world.mails_to("ada@example.org")
    [bob] = world.mails_to("bob@example.org")
    ada_unsub = list_unsubscribe_https(ada)
    bob_unsub = list_unsubscribe_https(bob)
    ada_token, bob_token = ada_unsub.rsplit("/", 1)[1], bob_unsub.rsplit("/", 1)[1]
    more = links_with_prefix(html_of(ada), world.base + "/f/")[0]
    flip = "A" if ada_token[15] != "A" else "B"
    bad = [
        f"{world.base}/u/{ada_token[:15]}{flip}{ada_token[16:]}",  # one character changed
        f"{world.base}/u/{ada_token[:11]}{bob_token[11:]}",  # Ada's start, Bob's tail
        f"{world.base}/u/{bob_token[:4]}{ada_token[4:]}",  # Bob's reference, Ada's MAC
        f"{world.base}/u/{more.rsplit('/', 1)[1]}",  # a feedback token as an unsubscribe one
        f"{world.base}/u/forged",
        f"{world.base}/f/{ada_token}",
    ]
    with running_server(world.config, world.sock):
        for url in bad:
            response = one_click(url)
            assert response.status_code == 404, url
            assert "This link does not work" in response.text
        # Bob's link unsubscribes Bob, never Ada.
        assert one_click(bob_unsub).status_code == 200
    with Store.open(world.config.digest.state) as store:
        assert list(store.unsubscribed()) == ["bob@example.org"]


def test_readers_added_after_the_server_started_get_working_links_and_removed_ones_keep_them(
    world, smtp_server
):
    """The app started with Ada and Bob. Then the config changes under it (Ada removed, Cyd
    added: what a SIGHUP makes the daemon send by, while its web side keeps the config it
    started with) and a run sends Cyd her first digest. Every link in every mail works: Cyd's
    (one-click unsubscribe per RFC 8058, view, feedback) and Ada's old ones, also after a
    restart with the new config. A forged reader is still refused."""
    world.day(1, world.items[:12])
    [ada] = world.mails_to("ada@example.org")
    changed = world.config_for(["bob@example.org", "cyd@example.org"], name="changed.toml")
    with running_server(world.config, world.sock), httpx.Client(timeout=10) as client:
        report = world.day(2, world.items[12:24], config=changed)
        assert {s.email: s.status for s in report.subscribers}["cyd@example.org"] == "sent"
        [cyd] = world.mails_to("cyd@example.org")
        [view] = set(links_with_prefix(html_of(cyd), world.base + "/v/"))
        page = client.get(view)
        assert page.status_code == 200 and page.text == html_of(cyd)
        more = links_with_prefix(html_of(cyd), world.base + "/f/")[0]
        assert client.get(more).status_code == 200
        assert client.post(more, data={"confirm": "yes"}).status_code == 200
        unsubscribed = one_click(list_unsubscribe_https(cyd))
        assert unsubscribed.status_code == 200 and "c…@example.org" in unsubscribed.text
        # Ada is no longer in the config; the mail she got still unsubscribes her.
        assert one_click(list_unsubscribe_https(ada)).status_code == 200
        stranger = make_token(SECRET.encode(), "unsubscribe", "eve@example.org")
        assert one_click(f"{world.base}/u/{stranger}").status_code == 404
    with Store.open(world.config.digest.state) as store:
        assert set(store.unsubscribed()) == {"ada@example.org", "cyd@example.org"}
        assert len(store.feedback("cyd@example.org")) == 1
    # Restarted with the new config, which has no Ada: her links still work.
    ada_view = links_with_prefix(html_of(ada), world.base + "/v/")[0]
    resubscribe = list_unsubscribe_https(ada) + "/resubscribe"
    with running_server(changed, bind_socket(changed.web)), httpx.Client(timeout=10) as client:
        assert client.get(ada_view).text == html_of(ada)
        assert "Welcome back" in client.post(resubscribe, data={}).text
        assert one_click(list_unsubscribe_https(ada)).status_code == 200


def test_hardening_over_the_wire(world):
    world.day(1, world.items[:4])
    [ada] = world.mails_to("ada@example.org")
    unsub = list_unsubscribe_https(ada)
    limiter = RateLimiter(burst=5, per_second=0.01)
    with (
        running_server(world.config, world.sock, limiter=limiter) as base,
        httpx.Client(timeout=10) as client,
    ):
        health = client.get(base + "/healthz")
        assert health.status_code == 200 and health.text == "ok\n"
        assert "server" not in health.headers  # uvicorn's banner is off
        big = client.post(
            unsub,
            content=b"List-Unsubscribe=One-Click&pad=" + b"x" * 10_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413 and "too large" in big.text
        assert client.request("PATCH", unsub).status_code == 405
        statuses = [client.get(base + "/").status_code for _ in range(6)]
        assert statuses.count(429) >= 2
        limited = client.get(unsub)
        assert limited.status_code == 429 and "One moment, please" in limited.text
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-security-policy"] == CSP
        assert limited.headers["referrer-policy"] == "no-referrer"
        assert client.get(base + "/healthz").status_code == 200
        # Behind the reverse proxy (127.0.0.1 is trusted), the client address is the one
        # it forwards, so readers do not share one bucket.
        other = client.get(base + "/", headers={"X-Forwarded-For": "198.51.100.4"})
        assert other.status_code == 200
    with Store.open(world.config.digest.state) as store:
        assert store.unsubscribed() == {}


def test_the_view_link_shows_the_digest_as_mailed(world, smtp_server):
    report = world.day(1, world.items[:6], keep_papers=True)
    [received] = [m for m in smtp_server.messages if "ada@example.org" in m.rcpt_tos]
    ada = received.message
    [view] = set(links_with_prefix(html_of(ada), world.base + "/v/"))
    with Store.open(world.config.digest.state) as store:  # the pipeline kept the wire bytes
        assert store.message_bytes("ada@example.org", report.subscribers[0].digest_date)
    with running_server(world.config, world.sock):
        page = httpx.get(view, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP  # its inline styles, no scripts
    title = report.subscribers[0].papers[0].paper.title
    assert html_of(ada) == page.text
    assert title.split()[0] in page.text


def test_a_like_changes_that_readers_next_ranking(world, real_model):
    world.day(1, world.items[:10])
    [ada] = world.mails_to("ada@example.org")
    # Like the paper Ada got at the bottom of her digest.
    more_links = links_with_prefix(html_of(ada), world.base + "/f/")[0::2]
    with running_server(world.config, world.sock):
        assert httpx.post(more_links[-1], data={"confirm": "yes"}, timeout=10).status_code == 200
    with Store.open(world.config.digest.state) as store:
        assert list(store.feedback("ada@example.org").values()) == ["like"]

    # The next digest (a preview of it): Ada and Bob have the same profile, only Ada's like
    # tells them apart.
    world.serve_page(world.items[10:40])
    report = send_now(
        world.config,
        RunOptions(mode=Mode.DRY_RUN, keep_papers=True),
        deps(DAY1.replace(day=13), model=lambda: real_model),
    )
    preview = {s["email"]: s["papers"] for s in preview_json(report)["subscribers"]}
    ada_rank = [(p["id"], p["score"]) for p in preview["ada@example.org"]]
    bob_rank = [(p["id"], p["score"]) for p in preview["bob@example.org"]]
    assert ada_rank != bob_rank


def test_serve_web_stops_on_its_event_and_a_taken_port_is_one_clear_error(world):
    with running_server(world.config, world.sock) as base:
        assert httpx.get(base + "/healthz", timeout=10).status_code == 200
        # The same address while it is taken: a DigestError, not uvicorn's sys.exit.
        with pytest.raises(WebServerError, match="cannot listen on 127.0.0.1:"):
            bind_socket(world.config.web)
    # Stopped (running_server set the stop event and joined the thread): the port is free.
    with pytest.raises(httpx.TransportError):
        httpx.get(base + "/healthz", timeout=2)
    sock = bind_socket(world.config.web)
    sock.close()


def test_serve_and_check_without_the_secret_say_how_to_fix_it(world, monkeypatch):
    import asyncio

    monkeypatch.delenv("DIGEST_WEB_SECRET")
    runner = CliRunner()
    for args in (["serve"], ["check"], ["send-now"]):
        result = runner.invoke(cli, [*args, "-c", str(world.config.path)])
        assert result.exit_code == 2, (args, result.output)
        assert "DIGEST_WEB_SECRET is not set" in result.output
        assert "secrets.token_urlsafe" in result.output
        assert "listening" not in result.output and "serving" not in result.output
    with pytest.raises(ConfigError):
        asyncio.run(serve_web(world.config, stop=asyncio.Event()))
    monkeypatch.setenv("DIGEST_WEB_SECRET", SECRET)
    result = runner.invoke(cli, ["check", "-c", str(world.config.path)])
    assert result.exit_code == 0 and f"web: {world.base} (listens on 127.0.0.1:" in result.output


def test_digest_serve_runs_the_app_until_stopped(world, tmp_path):
    """`digest serve` in a real process: binds, says where it listens (one line), logs one
    line per request without -v (never a token), and exits 0 on SIGTERM after a graceful stop,
    as `digest run` does."""
    port = world.sock.getsockname()[1]
    world.sock.close()  # `digest serve` binds it itself
    world.day(1, world.items[:4])
    [ada] = world.mails_to("ada@example.org")
    unsub = list_unsubscribe_https(ada)
    token = unsub.rsplit("/", 1)[1]
    proc = serve_process(world.config.path)
    try:
        wait_until_serving(proc, port)
        assert httpx.get(unsub, timeout=10).status_code == 200
        assert httpx.get(unsub + "/", timeout=10).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert (
        out == f"listening on http://127.0.0.1:{port} for the links in the digests (Ctrl-C stops)\n"
    )
    assert "127.0.0.1 GET /healthz 200" in err
    assert "127.0.0.1 GET /u/… 200" in err and "127.0.0.1 GET /u/…/ 404" in err
    assert token not in err and token[:12] not in err and "Traceback" not in err


def test_digest_serve_fails_before_saying_it_serves(world):
    """A port in use: one error line and exit 1, and no line claiming to serve."""
    port = world.sock.getsockname()[1]
    world.sock.listen()  # the port is taken
    proc = serve_process(world.config.path)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert out == ""
    assert err == (
        f"digest: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(fix: stop what uses that port, or change [web] listen)\n"
    )


def serve_process(config_path) -> subprocess.Popen[str]:
    env = {**os.environ, "DIGEST_WEB_SECRET": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "-c", str(config_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_serving(proc: subprocess.Popen[str], port: int) -> None:
    for _ in range(500):
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            assert response.status_code == 200
            return
        except httpx.TransportError:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
    raise AssertionError("digest serve did not answer")
