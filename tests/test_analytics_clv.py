"""BG/NBD against the published CDNOW fit, on simulated data, and end to end."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from crmcore.analytics import bgnbd, clv
from crmcore.analytics.clv import summary_data
from crmcore.storage._driver import connection

CDNOW = Path(__file__).resolve().parents[1] / "bench" / "data" / "cdnow_customers_summary.csv"


def _cdnow():
    rows = list(csv.DictReader(CDNOW.open(encoding="utf-8")))
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("frequency", "recency", "T"))


@pytest.mark.skipif(not CDNOW.exists(), reason="CDNOW summary not shipped")
def test_fit_matches_the_published_cdnow_result():
    x, t_x, T = _cdnow()
    assert len(x) == 2357
    p = bgnbd.fit_bgnbd(x, t_x, T)
    for (
        k,
        v,
    ) in bgnbd.PUBLISHED_CDNOW.items():  # Fader, Hardie & Lee (2005): 0.243, 4.414, 0.793, 2.426
        assert round(p[k], 3) == v, (k, p[k])
    assert p["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    # the documented CDNOW example (lifetimes' docs): x=2, t_x=30.43, T=38.86 -> 1.226 in 39 weeks
    assert bgnbd.expected_purchases(p, 39, [2], [30.43], [38.86])[0] == pytest.approx(
        1.226, abs=1e-3
    )
    assert bgnbd.p_alive(p, [0], [0], [38.86])[0] == 1.0


def _simulate(r, alpha, a, b, n, T, seed):
    """Purchases from the BG/NBD story: Poisson(lambda) while alive, drop out after
    any purchase with probability p; lambda ~ Gamma(r, alpha), p ~ Beta(a, b)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    for i in range(n):  # test-only simulation
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x[i] += 1
            tx[i] = t
            if rng.random() < p[i]:
                break
    return x, tx, np.full(n, T)


def test_fit_recovers_simulated_parameters():
    truth = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
    x, tx, T = _simulate(*truth.values(), n=8000, T=52.0, seed=7)
    p = bgnbd.fit_bgnbd(x, tx, T)
    for k, v in truth.items():
        assert p[k] == pytest.approx(v, rel=0.25), (k, p[k])


def test_gamma_gamma_known_result():
    # lifetimes' documented CDNOW spend fit: p=6.25, q=3.74, v=15.45; rebuild a data set whose
    # ML fit is known by construction is costly, so check the estimator on simulated data.
    rng = np.random.default_rng(3)
    p_, q_, v_ = 6.0, 4.0, 15.0
    n = 6000
    x = rng.integers(1, 8, n).astype(float)
    nu = rng.gamma(q_, 1 / v_, n)
    m = np.array([rng.gamma(p_ * k, 1 / (nu_ * k)) for k, nu_ in zip(x, nu, strict=True)])
    g = bgnbd.fit_gamma_gamma(x, m)
    assert g["p"] == pytest.approx(p_, rel=0.2) and g["q"] == pytest.approx(q_, rel=0.2)
    assert g["v"] == pytest.approx(v_, rel=0.3)


def test_summary_counts_repeat_purchases_per_distinct_day(crm):
    d = dt.datetime(2025, 1, 6, 9)  # a Monday
    a = crm.customers.add("a").id
    for days, hour in [(0, 0), (0, 5), (7, 0), (14, 0), (14, 3), (70, 0)]:
        crm.records.add_transaction(a, 1000 + days, occurred_at=d + dt.timedelta(days=days, hours=hour))
    b = crm.customers.add("b").id
    crm.records.add_transaction(b, 500, occurred_at=d + dt.timedelta(days=21))
    with crm.transaction(write=False):
        s = summary_data(crm, d + dt.timedelta(days=35), unit="week")
    got = {
        int(i): (x, tx, T, m)
        for i, x, tx, T, m in zip(s["ids"], s["x"], s["t_x"], s["T"], s["m"], strict=True)
    }
    assert got[a] == (2.0, 2.0, 5.0, (1007 + 2 * 1014) / 2)  # days 0, 7, 14 (day 70 is later)
    assert got[b] == (0.0, 0.0, 2.0, 0.0)


def test_clv_end_to_end(crm, crm_cli):
    rng = np.random.default_rng(11)
    start = dt.datetime(2025, 1, 1)
    for i in range(40):
        c = crm.customers.add(f"c{i}").id
        n = int(rng.integers(1, 6))
        for day in sorted(rng.choice(300, size=n, replace=False).tolist()):
            crm.records.add_transaction(
                c, int(rng.integers(500, 5000)), occurred_at=start + dt.timedelta(days=day)
            )
    r = clv(crm, until=dt.datetime(2025, 12, 31), horizon=26)
    assert set(r["params"]) == {"r", "alpha", "a", "b"} and r["customers_fitted"] == 40
    some = next(iter(r["customers"]))
    alive = float(crm.customers.labels(some)["p_alive"])
    assert 0 <= alive <= 1 and abs(alive - r["customers"][some]["p_alive"]) < 1e-3
    assert r["at_risk_customers"] == sorted(
        r["at_risk_customers"], key=lambda c: r["customers"][c]["p_alive"]
    )
    res = crm_cli("analytics", "clv", "--until", "2025-12-31", "--json")
    assert res.exit_code == 0 and res.json()["time_unit"] == "week"


def _buy_every_day(crm, customers: int, until: dt.datetime) -> None:
    """A degenerate history: customer k bought on each of the last k days, up to
    the calibration end (no one ever lapses, so the fit has no finite optimum)."""
    for k in range(1, customers + 1):
        c = crm.customers.add(f"daily{k}").id
        for day in range(k + 1):
            crm.records.add_transaction(c, 1000, occurred_at=until - dt.timedelta(days=day))


def test_clv_refuses_a_degenerate_fit_and_stores_nothing(crm, crm_cli):
    until = dt.datetime(2025, 12, 31, 12)
    _buy_every_day(crm, 30, until)
    res = crm_cli("analytics", "clv", "--until", "2025-12-31", "--time-unit", "day", "--json")
    assert res.exit_code == 1, res
    assert res.stdout == ""  # no half result, and never NaN
    assert "NaN" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert res.stderr.startswith("error: BG/NBD:") and "nothing stored" in res.stderr
    some = crm.customers.list(limit=1)[0].id
    assert "p_alive" not in crm.customers.labels(some) and "expected_purchases" not in crm.customers.labels(some)
    with crm.transaction(write=False):
        from crmcore.schema import job_runs

        assert connection(crm.db).execute(job_runs.select()).first() is None


def test_clv_without_repeat_purchases_says_so(crm, crm_cli):
    for i in range(10):
        crm.records.add_transaction(
            crm.customers.add(f"once{i}").id, 500, occurred_at=dt.datetime(2025, 3, 1 + i)
        )
    res = crm_cli("analytics", "clv", "--until", "2025-12-31", "--json")
    assert res.exit_code == 1 and res.stdout == ""
    assert "no customer made a repeat purchase" in res.stderr


def test_clv_refuses_non_finite_results_of_a_converged_fit(crm, monkeypatch):
    start = dt.datetime(2025, 1, 1)
    for i in range(12):
        c = crm.customers.add(f"c{i}").id
        for j, day in enumerate((0, 10 + i, 40 + 3 * i)):
            crm.records.add_transaction(
                c, 1000 + 137 * i + 50 * j, occurred_at=start + dt.timedelta(days=day)
            )

    def nan_forecast(params, t, x, t_x, T):
        return np.full(len(np.asarray(x)), np.nan)

    monkeypatch.setattr(bgnbd, "expected_purchases", nan_forecast)
    from crmcore.errors import ValidationError

    with pytest.raises(ValidationError, match="no finite expected purchases for 12 of 12"):
        clv(crm, until=dt.datetime(2025, 6, 30))
    assert "expected_purchases" not in crm.customers.labels(crm.customers.list(limit=1)[0].id)
