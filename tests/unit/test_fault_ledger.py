"""The fault ledger adds up what several pytest-xdist workers counted, as one session would have."""

from __future__ import annotations

import pickle

from tests.faults import KINDS, FaultLedger


def test_two_workers_figures_add_up_to_the_one_session_table():
    one_session, first, second = FaultLedger(), FaultLedger(), FaultLedger()
    for ledger, kind, outcome, correct in [
        (first, KINDS[0], "completed", True),
        (first, KINDS[0], "failed", True),
        (second, KINDS[0], "failed", False),
        (second, KINDS[-1], "failed", True),
    ]:
        ledger.inject(kind)
        ledger.job(kind, outcome, correct)
        one_session.inject(kind)
        one_session.job(kind, outcome, correct)
    audits = [(first, 1, 0, 0, 5, 2.5), (second, 0, 2, 1, 7, 1.0)]
    for ledger, lost, orphaned, secrets, places, seconds in audits:
        ledger.objects_lost, ledger.objects_orphaned = lost, orphaned
        ledger.secrets_found, ledger.places_scanned, ledger.seconds = secrets, places, seconds
    one_session.objects_lost, one_session.objects_orphaned = 1, 2
    one_session.secrets_found, one_session.places_scanned, one_session.seconds = 1, 12, 3.5

    controller = FaultLedger()
    assert not controller.ran
    for worker in (first, second):
        controller.add(pickle.loads(pickle.dumps(worker.figures())))  # plain data, as execnet sends it
    assert controller.ran
    assert controller.render() == one_session.render()
    assert "| **total** | 4 | 1 | 2 | 1 |" in controller.render()
    assert "objects lost: 1; objects orphaned or duplicated: 2; secrets found" in controller.render()
