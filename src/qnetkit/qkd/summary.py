"""A link run's statistics as reported (``qnetkit qkd run --json``): QBER with its confidence
interval, and the secrecy and correctness parameters composed over the run's blocks.

QBER interval: Clopper and Pearson, Biometrika 26, 404 (1934), exact binomial. Composition: the
trace-distance criterion is composable (Portmann and Renner, arXiv:1409.3525 (2014)), so the
keys of N blocks, each (eps_sec, eps_cor)-secure (Lim et al. 2014 Sec. II), are together
(N eps_sec, sum of eps_cor)-secure.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import betaincinv

from qnetkit.keyrate.common import binary_entropy
from qnetkit.qkd.link_config import compare_keys

if TYPE_CHECKING:
    from qnetkit.qkd.link import LinkConfig, PartyResult


def clopper_pearson_interval(
    errors: int, trials: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) two-sided interval for a binomial error probability.

    Lower end: the alpha/2 quantile of Beta(k, n - k + 1) (0 if k = 0); upper end: the
    1 - alpha/2 quantile of Beta(k + 1, n - k) (1 if k = n). No trials: (0, 1).
    """
    if not 0 <= errors <= trials:
        raise ValueError(f"need 0 <= errors <= trials, got {errors} of {trials}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    lo = 0.0 if errors == 0 else float(betaincinv(errors, trials - errors + 1, alpha / 2))
    hi = 1.0 if errors == trials else float(betaincinv(errors + 1, trials - errors, 1 - alpha / 2))
    return lo, hi


def summarise(
    config: LinkConfig,
    alice: PartyResult,
    bob: PartyResult,
    quantum_wall_s: float,
    wall_s: float,
    ep_log_leaked: int,
) -> dict[str, Any]:
    """The run's statistics as in ``qnetkit qkd run --json`` (Bob's view; no key material).

    ``qber`` is errors / bits over every sifted bit whose error is known (reconciled key bits,
    the public QBER sample, announced test-basis bits): ``qber_sample_bits`` of them, with the
    exact 95 % interval ``qber_ci95`` of the per-bit error probability (bits taken as
    independent trials). ``eps_sec_run`` = blocks x ``eps_sec_per_block`` (every block
    post-processed counts, keyed or aborted); ``eps_cor_run``: sum of eps_cor over the blocks
    that reached verification; ``eps_qkd_run`` = their sum, the run's key being that secure
    (Lim et al. 2014 Sec. II: eps_sec + eps_cor). ``keys_match`` is None when neither party has
    a key; ``aborted`` (no secret key) always comes with its ``abort_reason``.
    """
    st = bob.stats
    n_ec = st["reconciled_bits"]
    # Errors are known exactly where reconciliation ran, and in the sample and the test bits.
    measured = n_ec + st["sample_bits"] + st["test_bits"]
    wrong = st["errors_corrected"] + st["sample_errors"] + st["test_errors"]
    qber = wrong / measured if measured else 0.0
    ci_lo, ci_hi = clopper_pearson_interval(wrong, measured)
    ec_qber = st["errors_corrected"] / n_ec if n_ec > 0 else 0.0
    h = float(binary_entropy(np.asarray(ec_qber)))
    ec_eff = st["leaked_ec_bits"] / (n_ec * h) if n_ec > 0 and h > 0 else None
    phase = st["phase_error_bounds"]
    stage_wall = {
        k: round(max(alice.stage_wall_s[k], bob.stage_wall_s[k]), 6) for k in bob.stage_wall_s
    }
    stage_wall["quantum"] = round(quantum_wall_s, 6)
    secret = int(min(alice.key.size, bob.key.size))
    aborted = secret == 0
    reasons = list(dict.fromkeys(st["abort_reasons"]))
    if aborted and not reasons:
        # No block was post-processed, so no block gave a reason: say why there is no key.
        reasons = [f"no key: {st['sifted_bits']} sifted bits, too few to post-process"]
    eps_sec_run = st["blocks"] * config.eps_sec
    return {
        "protocol": config.protocol,
        "length_km": config.length_km,
        "pulses": config.pulses,
        "reconciliation": config.reconciliation,
        "key_bases": config.key_bases,
        "attack": None if config.attack is None else asdict(config.attack),
        "seed": config.seed,
        "sifted_bits": st["sifted_bits"],
        "qber": qber,
        "qber_errors": wrong,
        "qber_sample_bits": measured,
        "qber_ci95": [ci_lo, ci_hi],
        "phase_error_bound": float(max(phase)) if phase else None,
        "single_photon_bits": st["s1_bits"],
        "test_bits": st["test_bits"],
        "leaked_ec_bits": st["leaked_ec_bits"],
        "channel_leaked_ec_bits": ep_log_leaked,
        "ec_efficiency": ec_eff,
        "ec_channel_uses": st["ec_channel_uses"],
        "verification_bits": st["verification_bits"],
        "auth_bits_consumed": st["auth_bits_consumed"],
        "secret_key_bits": secret,
        "key_rate_per_pulse": secret / config.pulses,
        "keys_match": compare_keys(alice.key, bob.key),
        "aborted": aborted,
        "abort_reason": reasons[0] if aborted and reasons else None,
        "blocks": st["blocks"],
        "blocks_aborted": st["blocks_aborted"],
        "block_abort_reasons": reasons,
        "eps_sec_per_block": config.eps_sec,
        "eps_sec_run": eps_sec_run,
        "eps_cor_run": st["eps_cor"],
        "eps_qkd_run": eps_sec_run + st["eps_cor"],
        "wall_s": round(wall_s, 6),
        "stage_wall_s": stage_wall,
        "secret_bits_per_wall_s": secret / wall_s if wall_s > 0 else None,
    }


__all__ = ["clopper_pearson_interval", "summarise"]
