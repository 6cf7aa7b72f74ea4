"""The collector's settings for a run: set while it runs, restored after it (a daemon runs on)."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

from digest.heap import YOUNG_THRESHOLD, run_heap, settle
from digest.run import RunOptions, send_now
from tests.support.run import deps
from tests.test_integrity import setup


def test_run_heap_freezes_and_then_restores_the_collector() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with run_heap():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        made_later = [[] for _ in range(10)]
        frozen = gc.get_freeze_count()
        settle()
        assert gc.get_freeze_count() >= frozen + len(made_later)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # what was frozen can be collected again


def test_a_cycle_made_during_a_run_is_still_collected_by_itself() -> None:
    class Node:
        pass

    with run_heap():
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        alive = [True]

        class Watch:
            def __del__(self) -> None:
                alive[0] = False

        node.watch = Watch()  # type: ignore[attr-defined]
        del node
        # No gc.collect(): enough live allocations for the collector's own young collection.
        kept = [[] for _ in range(2 * YOUNG_THRESHOLD)]
        assert alive == [False]
        del kept


def test_a_run_leaves_the_collector_as_it_found_it(tmp_path, smtp_server) -> None:
    config, _ = setup(tmp_path, smtp_server)
    before = gc.get_threshold()
    report = send_now(
        config,
        RunOptions(),
        deps(datetime(2026, 6, 12, 7, 0, tzinfo=UTC), mailer=smtp_server.mailer(retries=1)),
    )
    assert report.exit_code == 0
    assert len(smtp_server.messages) == 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
