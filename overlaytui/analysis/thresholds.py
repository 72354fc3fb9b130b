"""Judging measurements against thresholds, honestly about sample size.

Loss: good < 0.01 %, acceptable < 0.1 %, bad >= 0.1 % (configurable). A verdict of "good" or "acceptable"
needs the sample to be able to show it: with 0 of 100 packets lost the true loss may still be ~3 %, so the
verdict is "not enough samples". The bound used is the one-sided 95 % upper bound of the loss rate (exact
binomial, Clopper-Pearson; with no loss it is the "rule of three", about 3/n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from ..model import Network, ProbeResult


class Verdict(StrEnum):
    GOOD = "good"
    ACCEPTABLE = "acceptable"
    BAD = "bad"
    INSUFFICIENT = "not enough samples"
    UNKNOWN = "unknown"  # nothing measured (or the probe failed)


@dataclass(frozen=True)
class LossThresholds:
    good_pct: float = 0.01
    acceptable_pct: float = 0.1


def loss_upper_bound_pct(lost: int, sent: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound of the loss rate, in percent (Clopper-Pearson)."""
    if sent <= 0:
        return 100.0
    if lost >= sent:
        return 100.0
    alpha = 1.0 - confidence
    if lost == 0:
        return 100.0 * (1.0 - alpha ** (1.0 / sent))
    # bisection on the binomial CDF: the largest p with P(X <= lost | p) >= alpha
    low, high = lost / sent, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if _binom_cdf(lost, sent, mid) > alpha:
            low = mid
        else:
            high = mid
    return 100.0 * high


def _binom_cdf(k: int, n: int, p: float) -> float:
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0 if k < n else 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p
                          + (n - i) * log_q)
    return min(total, 1.0)


def judge_loss(lost: int, sent: int, thresholds: LossThresholds = LossThresholds()) -> Verdict:
    if sent <= 0:
        return Verdict.UNKNOWN
    if 100.0 * lost / sent >= thresholds.acceptable_pct:
        return Verdict.BAD  # seen, not estimated: enough to call it bad
    upper = loss_upper_bound_pct(lost, sent)
    if upper < thresholds.good_pct:
        return Verdict.GOOD
    if upper < thresholds.acceptable_pct:
        return Verdict.ACCEPTABLE
    return Verdict.INSUFFICIENT


def packets_needed(thresholds: LossThresholds = LossThresholds(), level: str = "good") -> int:
    """How many loss-free packets it takes before a result can be called good (or acceptable)."""
    target = thresholds.good_pct if level == "good" else thresholds.acceptable_pct
    return math.ceil(math.log(0.05) / math.log1p(-target / 100.0))


def black_hole(path_mtu: int | None, effective_mtu: int | None) -> bool:
    """Full-size packets vanish on the way: the largest packet that arrived with DF set is below what the overlay
    lets containers send."""
    return path_mtu is not None and effective_mtu is not None and path_mtu < effective_mtu


def judge(result: ProbeResult, network: Network | None, thresholds: LossThresholds = LossThresholds()) -> Verdict:
    """A measured result against the thresholds; a failed probe measured nothing: UNKNOWN, never a verdict.
    The one judge of "bad": `probe`'s exit code, the findings and the panes all ask it."""
    if not result.measured:
        return Verdict.UNKNOWN
    if result.kind == "ping":
        return judge_loss(result.sent - result.received, result.sent, thresholds)
    if result.kind == "mtu":
        return Verdict.BAD if black_hole(result.path_mtu, network.effective_mtu if network else None) else Verdict.GOOD
    return Verdict.GOOD


def remedy(path_mtu: int, effective_mtu: int, configured: int | None) -> str:
    """What to do about a black hole, in one line."""
    fit = path_mtu + 50  # the overlay MTU option that makes containers' packets fit this path
    return (f"packets above {path_mtu} bytes do not arrive while the overlay allows {effective_mtu}: recreate the "
            f"network with --opt com.docker.network.driver.mtu={fit} (now {configured or 'default 1500'}), or raise "
            f"the underlay MTU on the path to at least {effective_mtu + 50}")
