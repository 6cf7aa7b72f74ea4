"""`digest demo`: a working digest in seconds, with no network and no mail server.

    demo = run_demo(Path("digest-demo"))     # writes the folder, runs, returns the report

The package ships one real captured day of the Hugging Face Daily Papers API (the response of
12 June 2026, byte for byte; where it comes from: SOURCES.md beside this file) and a config of
three readers over it. The demo writes both into a folder, runs the main job on them (the
shipped model ranks; keywords only if it cannot start) with the outbox as delivery, and writes
each digest's HTML beside its .eml. The folder is then an ordinary digest setup: `digest
status`, `explain` and `show` work on it, and pointing its source at the real API makes it the
real thing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path

from digest.config import load_config
from digest.errors import UsageError
from digest.run import Deps, Mode, RunOptions, RunReport, send_now
from digest.run.preview import html_part

CONFIG = "digest.toml"  # in the demo folder; shipped as demo.toml
DATA = "hf-daily-papers-2026-06-12.json"
DAY = date(2026, 6, 12)  # the captured day: the demo's digests are that day's
MARK = b"# paper digest demo"  # the first line of a config the demo wrote
# What a demo folder holds besides the two shipped files; a new demo starts without them.
_MADE = ("digest.sqlite3", "digest.sqlite3-wal", "digest.sqlite3-shm", "outbox")


@dataclass
class Demo:
    config: Path  # the demo's config file
    report: RunReport
    pages: list[Path]  # each digest's HTML, beside its .eml in the outbox


def write_demo(folder: Path) -> Path:
    """The demo's config and captured data in `folder` (made if needed), a former demo's state
    and mails removed. Returns the config's path. A folder holding anything else is refused:
    the demo never removes what it did not write."""
    config = folder / CONFIG
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"{folder} is a file", fix="pass --dir with a folder name")
        former = config.is_file() and config.read_bytes().startswith(MARK)
        if not former and any(folder.iterdir()):
            raise UsageError(
                f"{folder} exists and is not a demo folder",
                fix="pass --dir with a new folder name",
            )
        for name in _MADE:
            made = folder / name
            if made.is_dir():
                shutil.rmtree(made)
            elif made.exists():
                made.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    shipped = resources.files(__name__)
    config.write_bytes(shipped.joinpath("demo.toml").read_bytes())
    (folder / DATA).write_bytes(shipped.joinpath(DATA).read_bytes())
    return config


def run_demo(folder: Path, deps: Deps | None = None) -> Demo:
    """Write the demo into `folder` and send each reader the captured day's digest into the
    outbox. (Dated that day, the demo leaves today's digest to the first real run.)"""
    path = write_demo(folder)
    config = load_config(path)
    options = RunOptions(mode=Mode.SEND, command="demo", digest_date=DAY)
    report = send_now(config, options, deps or Deps())
    pages = []
    for eml in sorted(config.delivery.outbox.glob("*.eml")):
        page = eml.with_suffix(".html")
        page.write_text(html_part(eml.read_bytes()), encoding="utf-8")
        pages.append(page)
    return Demo(path, report, pages)
