"""The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the
easy way") and the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and
CLV"), fitted by maximum likelihood with numpy and scipy (scipy: extra ``analytics``).

Inputs per customer: ``x`` repeat purchases (distinct purchase days after the
first), ``t_x`` time of the last purchase and ``T`` time of the end of the
calibration period, both measured from the first purchase. Identical
``(x, t_x, T)`` triples are fitted once with a weight, so a million customers
cost what their distinct histories cost.
"""

from __future__ import annotations

from typing import Any

PUBLISHED_CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, weeks


def _np() -> Any:
    """numpy, once scipy (the ``analytics`` extra) is known to be importable."""
    import numpy as np

    try:
        import scipy  # noqa: F401
    except ImportError as e:
        from crmcore.extras import missing

        raise (missing(e) or e) from None
    return np


def compress(*cols: Any) -> tuple[tuple[Any, ...], Any, Any]:
    """Unique rows of the given columns, the inverse index and the counts."""
    np = _np()
    stacked = np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])
    uniq, inverse, counts = np.unique(stacked, axis=0, return_inverse=True, return_counts=True)
    return tuple(uniq[:, i] for i in range(uniq.shape[1])), inverse.ravel(), counts


def bgnbd_loglik(params: Any, x: Any, t_x: Any, T: Any) -> Any:
    """Log-likelihood of each customer under BG/NBD (FHL 2005, eq. 6 in logs)."""
    np = _np()
    from scipy.special import gammaln

    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(x > 0, a4, -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _minimize(nll: Any, k: int, what: str, jac: bool = False) -> Any:
    """Minimise ``nll`` over ``k`` log-parameters; refuse a fit that ran out of
    iterations or ended on non-finite values (its results would be NaN)."""
    from scipy.optimize import minimize

    np = _np()
    res = minimize(
        nll,
        np.zeros(k),
        jac=jac,
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 5000},
    )
    # status 1: the iteration limit ended the search. A line search that found no
    # further decrease (status 2) is how L-BFGS-B stops at this tight ``ftol`` near
    # an optimum; its parameters are kept, and the results are checked for
    # finiteness by the caller.
    if res.status == 1 or not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
        from crmcore.errors import ValidationError

        reason = str(res.message).strip().rstrip(".: ").lower() or "no reason given"
        raise ValidationError(
            f"{what}: the maximum-likelihood fit did not converge on this data ({reason}); "
            "nothing stored"
        )
    return res


def bgnbd_objective(logp: Any, x: Any, t_x: Any, T: Any, w: Any) -> tuple[float, Any]:
    """Mean negative log-likelihood (weighted) and its gradient in log-parameters."""
    np = _np()
    from scipy.special import digamma, gammaln

    r, alpha, a, b = np.exp(logp)
    total = w.sum()
    pos = x > 0
    xm1 = np.maximum(x, 1) - 1
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    la_T, la_tx = np.log(alpha + T), np.log(alpha + t_x)
    a3 = -(r + x) * la_T
    a4 = np.where(pos, np.log(a) - np.log(b + xm1) - (r + x) * la_tx, -np.inf)
    both = np.logaddexp(a3, a4)
    ll = a1 + a2 + both
    p4 = np.where(pos, np.exp(a4 - both), 0.0)
    p3 = 1.0 - p4
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - p3 * la_T - p4 * la_tx
    d_alpha = r / alpha - p3 * (r + x) / (alpha + T) - p4 * (r + x) / (alpha + t_x)
    d_a = digamma(a + b) - digamma(a + b + x) + p4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - p4 / (b + xm1)
    grad = np.array([(w * d).sum() for d in (d_r, d_alpha, d_a, d_b)]) * np.array([r, alpha, a, b])
    return float(-(w * ll).sum() / total), -grad / total


def fit_bgnbd(x: Any, t_x: Any, T: Any, weights: Any = None) -> dict[str, Any]:
    """Maximum-likelihood r, alpha, a, b (log-parameterised, L-BFGS-B with the
    analytic gradient). ``weights`` count identical customers."""
    np = _np()
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if weights is None:
        (x, t_x, T), _, weights = compress(x, t_x, T)
    w = np.asarray(weights, dtype=np.float64)
    if len(x) == 0 or w.sum() == 0:
        from crmcore.errors import ValidationError

        raise ValidationError("BG/NBD: no customers with purchases before the calibration end")
    if not bool(((x > 0) & (w > 0)).any()):
        from crmcore.errors import ValidationError

        raise ValidationError(
            "BG/NBD: no customer made a repeat purchase before the calibration end; "
            "the model cannot be fitted (nothing stored)"
        )
    total = w.sum()
    res = _minimize(lambda lp: bgnbd_objective(lp, x, t_x, T, w), 4, "BG/NBD", jac=True)
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    return {
        "r": r,
        "alpha": alpha,
        "a": a,
        "b": b,
        "log_likelihood": float(-res.fun * total),
        "customers": int(total),
        "distinct_histories": len(x),
    }


def p_alive(params: dict[str, float], x: Any, t_x: Any, T: Any) -> Any:
    """P(still active | x, t_x, T) (FHL 2005, eq. 11; 1 for x = 0)."""
    np = _np()
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x = np.asarray(x, dtype=np.float64)
    log_ratio = (
        np.log(a)
        - np.log(b + np.maximum(x, 1) - 1)
        + (r + x)
        * (
            np.log(alpha + np.asarray(T, dtype=np.float64))
            - np.log(alpha + np.asarray(t_x, dtype=np.float64))
        )
    )
    return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)


def expected_purchases(params: dict[str, float], t: float, x: Any, t_x: Any, T: Any) -> Any:
    """E[purchases in the next ``t`` units | x, t_x, T] (FHL 2005, eq. 10)."""
    np = _np()
    from scipy.special import hyp2f1

    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    first = (a + b + x - 1) / (a - 1)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    second = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp
    log_ratio = (
        np.log(a)
        - np.log(b + np.maximum(x, 1) - 1)
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    third = 1 + np.where(x > 0, np.exp(log_ratio), 0.0)
    return first * second / third


def gamma_gamma_loglik(params: Any, x: Any, m: Any) -> Any:
    np = _np()
    from scipy.special import gammaln

    p, q, v = params
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )


def fit_gamma_gamma(x: Any, m: Any) -> dict[str, Any]:
    """Maximum-likelihood p, q, v of the Gamma-Gamma model of spend per purchase,
    on customers with ``x > 0`` repeat purchases of average value ``m > 0``."""
    np = _np()
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    keep = (x > 0) & (m > 0)
    (x, m), _, w = compress(x[keep], m[keep])
    if len(x) == 0:
        from crmcore.errors import ValidationError

        raise ValidationError("Gamma-Gamma: no repeat customers with positive spend")
    total = w.sum()

    def nll(logp: Any) -> float:
        return float(-(w * gamma_gamma_loglik(np.exp(logp), x, m)).sum() / total)

    res = _minimize(nll, 3, "Gamma-Gamma")
    p, q, v = (float(k) for k in np.exp(res.x))
    return {"p": p, "q": q, "v": v, "customers": int(total)}


def expected_spend(params: dict[str, float], x: Any, m: Any) -> Any:
    """E[spend per purchase | x, m] under Gamma-Gamma (population mean for x = 0)."""
    np = _np()
    p, q, v = params["p"], params["q"], params["v"]
    x, m = np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64)
    weight = p * x / (p * x + q - 1)
    mean = v * p / (q - 1)
    return (1 - weight) * mean + weight * np.where(x > 0, m, 0.0)
