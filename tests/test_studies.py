"""When an account's history is studied: once an hour at most, the accounts of one sweep in
turns through the hour (the study itself is tested through the monitor:
test_monitoring_spending.py)."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from bot.alerting.studies import study_due

LAST = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_sweeps_accounts_study_in_turns_through_the_hour():
    accounts = [SimpleNamespace(id=i, last_sample_at=LAST) for i in range(1, 121)]
    for minutes in (5, 15, 30, 45, 59):
        due = [a for a in accounts if study_due(a, LAST + timedelta(minutes=minutes))]
        assert len(due) == 2 * minutes  # a sixtieth of them for each minute gone by
    assert all(study_due(a, LAST + timedelta(hours=1)) for a in accounts)


def test_an_account_never_sampled_studies_at_once():
    assert study_due(SimpleNamespace(id=7, last_sample_at=None), LAST)
