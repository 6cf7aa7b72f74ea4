"""digest.deliver: the outbox mailer (.eml files) and the shared rate limiter."""

from __future__ import annotations

import asyncio
import email.policy
import os
from email.parser import BytesParser

import pytest

from digest.config import DeliveryConfig
from digest.deliver import OutboxMailer, RateLimiter, make_mailer, outbox_filename
from digest.deliver.outbox import write_atomically
from digest.errors import DeliverySetupError
from tests.support.delivery import Recorder, make_mail, run


def outbox_config(tmp_path, name: str = "outbox") -> DeliveryConfig:
    return DeliveryConfig(method="outbox", outbox=tmp_path / name)


def parse(path):
    return BytesParser(policy=email.policy.default).parsebytes(path.read_bytes())


# --- outbox ------------------------------------------------------------------------------------


def test_outbox_writes_one_parseable_eml_per_mail(tmp_path):
    mails = [make_mail("ada"), make_mail("bob")]
    rec = Recorder()
    outcomes = run(OutboxMailer(outbox_config(tmp_path, "deep/outbox")), mails, rec)

    folder = tmp_path / "deep" / "outbox"  # created, parents too
    assert sorted(p.name for p in folder.iterdir()) == [
        "2026-06-12_ada_at_example.org.eml",
        "2026-06-12_bob_at_example.org.eml",
    ]
    for mail, outcome in zip(mails, outcomes, strict=True):
        assert (outcome.status, outcome.attempts, outcome.code) == ("sent", 1, None)
        path = folder / outbox_filename(mail)
        assert str(path) in outcome.detail
        got = parse(path)
        assert got["Message-ID"] == mail.message_id
        assert got["To"] == mail.recipient
        assert got.get_body(("html",)).get_content().startswith("<p>Hello")
    assert rec.events == [
        ("attempt", "ada@example.org", ""),
        ("outcome", "ada@example.org", "sent"),
        ("attempt", "bob@example.org", ""),
        ("outcome", "bob@example.org", "sent"),
    ]


def test_outbox_rewriting_the_same_key_replaces_the_file(tmp_path):
    config = outbox_config(tmp_path)
    first = make_mail("ada")
    run(OutboxMailer(config), [first], Recorder())
    second = make_mail("ada")
    second.data = second.data.replace(b"Subject: Your paper digest", b"Subject: second version")
    run(OutboxMailer(config), [second], Recorder())

    files = list(config.outbox.iterdir())  # one file, no temp files left over
    assert [p.name for p in files] == ["2026-06-12_ada_at_example.org.eml"]
    assert parse(files[0])["Subject"].startswith("second version")


def test_outbox_filenames_are_safe_and_distinct():
    plain = make_mail("ada")
    assert outbox_filename(plain) == "2026-06-12_ada_at_example.org.eml"
    odd_a = make_mail("a+b")
    odd_b = make_mail("a_b")
    name_a, name_b = outbox_filename(odd_a), outbox_filename(odd_b)
    assert name_a != name_b
    for name in (name_a, name_b, outbox_filename(make_mail("../../etc/x"))):
        assert "/" not in name and not name.startswith(".")
        assert all(c.isalnum() or c in "._-" for c in name)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "a.eml"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.eml"]


def test_outbox_write_error_is_pending_and_the_others_go_on(tmp_path, monkeypatch):
    config = outbox_config(tmp_path)
    real_replace = os.replace

    def replace_fails_for_bob(src, dst):
        if "bob" in str(dst):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_fails_for_bob)
    outcomes = run(OutboxMailer(config), [make_mail("bob"), make_mail("ada")], Recorder())
    assert [o.status for o in outcomes] == ["pending", "sent"]
    assert "No space left on device" in outcomes[0].detail
    assert [p.name for p in config.outbox.iterdir()] == ["2026-06-12_ada_at_example.org.eml"]


def test_outbox_folder_that_cannot_be_created_is_a_setup_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    mailer = OutboxMailer(DeliveryConfig(method="outbox", outbox=tmp_path / "file" / "outbox"))
    rec = Recorder()
    with pytest.raises(DeliverySetupError, match="cannot create the outbox folder"):
        run(mailer, [make_mail("ada")], rec)
    assert rec.events == []


def test_make_mailer_outbox(tmp_path):
    mailer = make_mailer(outbox_config(tmp_path))
    assert isinstance(mailer, OutboxMailer)


# --- rate limiter ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_rate_limiter_spaces_sends_evenly():
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)  # one a second

    async def burst() -> None:
        await asyncio.gather(*(limiter.acquire() for _ in range(4)))

    asyncio.run(burst())
    # The first goes at once; the next three wait for their own slots, 1 s apart.
    assert clock.sleeps == [1.0, 2.0, 3.0]


def test_rate_limiter_does_not_save_up_idle_time():
    clock = FakeClock()
    limiter = RateLimiter(30, clock=clock, sleep=clock.sleep)  # one every 2 s
    assert limiter.reserve() == 0.0
    clock.now += 10  # idle for a while: the next is free, but only one
    assert limiter.reserve() == 0.0
    assert limiter.reserve() == 2.0
    clock.now += 0.5
    assert limiter.reserve() == pytest.approx(3.5)


def test_rate_limiter_rejects_nonsense():
    with pytest.raises(ValueError):
        RateLimiter(0)
