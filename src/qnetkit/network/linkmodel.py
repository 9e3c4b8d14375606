"""Secret-key rate and QBER of each link over time, from the analytic key-rate engine.

Decoy-state BB84 links are evaluated exactly at every step (Ma, Qi, Zhao, Lo, PRA 72, 012326
(2005), the intensity fixed at its optimum for the link as built) with time-varying detector
efficiency, dark counts (temperature), Raman noise from classical channels (Eraerds et al.
2010 model in ``physics.raman``, scaled by the traffic load) and an intercept-resend
eavesdropper (error 1/4 on the intercepted fraction). Other protocols are interpolated on
their rate-vs-length curve at the length that gives the same loss (no Raman noise there).

Raman noise follows the link's ``quantum_wavelength_nm`` and ``filter_bandwidth_nm`` and each
classical channel's wavelength: beta from silica's Raman spectrum (``physics.raman``), the
fibre's attenuation at both wavelengths (:func:`pump_loss_db_per_km`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from qnetkit._types import FloatArray
from qnetkit.keyrate.decoy_bb84 import DecoyBB84Params, decoy_bb84_key_rate, decoy_bb84_rate_at
from qnetkit.keyrate.registry import get_protocol
from qnetkit.network.repeater_link import RepeaterLinkRate, repeater_link_rate
from qnetkit.network.topology import ClassicalChannelSpec, Link
from qnetkit.physics.dwdm import band_of, typical_loss_db_per_km
from qnetkit.physics.raman import (
    RAMAN_ANCHOR_BETA_PER_KM_PER_NM,
    ClassicalChannel,
    RamanNoiseModel,
    raman_cross_section_per_km_per_nm,
)

DAY_S = 86400.0


def load_profile(kind: str, t_s: FloatArray) -> FloatArray:
    """Classical traffic load (0..1) over the day: flat, office hours, or evening peak."""
    hour = (t_s % DAY_S) / 3600.0
    if kind == "flat":
        return np.ones_like(t_s)
    peak = 13.0 if kind == "business" else 20.5
    return np.asarray(0.2 + 0.8 * np.exp(-0.5 * ((hour - peak) / 3.5) ** 2))


def pump_loss_db_per_km(link: Link, pump_wavelength_nm: float) -> float:
    """Attenuation (dB/km) a classical channel suffers: the link's own ``loss_db_per_km`` (the
    quantum wavelength's) when the channel is in the quantum channel's band, else the typical
    value of the channel's band (``physics.dwdm.TYPICAL_LOSS_DB_PER_KM``: 0.20 dB/km in the
    C-band, 0.33 in the O-band)."""
    if band_of(pump_wavelength_nm) == band_of(link.quantum_wavelength_nm):
        return link.loss_db_per_km
    return typical_loss_db_per_km(pump_wavelength_nm)


def classical_channels(link: Link, ch: ClassicalChannelSpec) -> tuple[ClassicalChannel, ...]:
    """The physical channels of one spec, seen from the link's quantum channel.

    Each of the ``count`` channels gets beta from the Raman spectrum at its own wavelength and
    the quantum wavelength (``physics.raman.raman_cross_section_per_km_per_nm``) unless the spec
    gives ``raman_cross_section_per_km_per_nm``, and attenuates at :func:`pump_loss_db_per_km`.
    A spec without a wavelength is one C-band channel with the published C-band coefficient and
    the quantum channel's attenuation (the model before wavelengths could be given).
    """
    wavelengths = ch.wavelengths_nm()
    if wavelengths is None:
        beta = ch.raman_cross_section_per_km_per_nm
        return (ClassicalChannel(ch.launch_power_dbm,
                                 RAMAN_ANCHOR_BETA_PER_KM_PER_NM if beta is None else beta,
                                 ch.direction),) * ch.count
    out = []
    for wavelength in wavelengths:
        beta = ch.raman_cross_section_per_km_per_nm
        if beta is None:
            beta = float(raman_cross_section_per_km_per_nm(wavelength, link.quantum_wavelength_nm))
        out.append(ClassicalChannel(ch.launch_power_dbm, beta, ch.direction,
                                    pump_loss_db_per_km(link, wavelength)))
    return tuple(out)


def raman_counts_per_gate(link: Link, ch: ClassicalChannelSpec, detector_efficiency: float,
                          gate_width_s: float) -> float:
    """Mean Raman noise counts per gate at full load from all ``count`` channels of ``ch``, in
    the link's quantum filter (``filter_bandwidth_nm`` at ``quantum_wavelength_nm``)."""
    model = RamanNoiseModel(
        quantum_wavelength_nm=link.quantum_wavelength_nm,
        filter_bandwidth_nm=link.filter_bandwidth_nm,
        loss_db_per_km=link.loss_db_per_km,
        channels=classical_channels(link, ch),
    )
    return float(model.counts_per_gate(link.length_km, detector_efficiency, gate_width_s))


@dataclass
class LinkModel:
    """One link's rate model, ready to evaluate on arrays of conditions."""

    link: Link
    params: Any
    pulse_rate_hz: float
    nominal_rate_bps: float
    nominal_qber: float
    mu: float | None = None
    raman: tuple[tuple[str, float], ...] = ()  # (load profile, counts per gate at full load)
    _grid_km: FloatArray | None = None
    _grid_rate: FloatArray | None = None
    _grid_qber: FloatArray | None = None
    repeater: RepeaterLinkRate | None = None  # a repeater-chain link: its chain's key

    @classmethod
    def build_many(cls, links: list[Link]) -> list[LinkModel]:
        """Models of many links; decoy-BB84 links that share a system are optimised in one
        vectorised call (the optimal intensity depends on the length only)."""
        groups: dict[Any, list[int]] = {}
        out: list[LinkModel | None] = [None] * len(links)
        for i, ln in enumerate(links):
            if ln.kind == "repeater-chain":
                out[i] = cls.build(ln)
                continue
            params = cls._params(ln)
            if isinstance(params, DecoyBB84Params):
                groups.setdefault(params, []).append(i)
            else:
                out[i] = cls.build(ln)
        for params, members in groups.items():
            lengths = np.array([links[i].length_km for i in members])
            curve = decoy_bb84_key_rate(params, lengths)
            for n, i in enumerate(members):
                mu = None if curve.mu is None else float(curve.mu[n])
                out[i] = cls._decoy(links[i], params, float(curve.key_rate_per_pulse[n]),
                                    float(curve.qber[n]), mu)
        return [m for m in out if m is not None]

    @staticmethod
    def _params(link: Link) -> Any:
        spec = get_protocol(link.qkd.protocol)
        fields = {f.name for f in dataclasses.fields(spec.params_type)}
        # Device values the protocol has no field for are refused when the topology loads.
        overrides = {k: v for k, v in link.qkd.param_overrides().items() if k in fields}
        # A measured total loss enters as the fiber's attenuation plus its excess as lumped loss.
        for name, value in (("loss_db_per_km", link.loss_db_per_km),
                            ("extra_loss_db", link.lumped_loss_db)):
            if name in fields:
                overrides[name] = value
        return spec.params_from(link.qkd.preset, overrides)

    @classmethod
    def _decoy(cls, link: Link, params: DecoyBB84Params, rate_per_pulse: float, qber: float,
               mu: float | None) -> LinkModel:
        rate_hz = link.qkd.pulse_rate_hz
        gate = min(1e-9, 1.0 / rate_hz)
        raman = tuple((ch.load_profile,
                       raman_counts_per_gate(link, ch, params.detector_efficiency, gate))
                      for ch in link.classical_channels)
        return cls(link, params, rate_hz, rate_per_pulse * rate_hz, qber, mu, raman)

    @classmethod
    def build(cls, link: Link) -> LinkModel:
        if link.repeater is not None:
            chain = repeater_link_rate(link.repeater, link.length_km, link.loss_db_per_km)
            return cls(link, None, link.qkd.pulse_rate_hz, chain.secret_key_rate_bps,
                       chain.qber, repeater=chain)
        spec = get_protocol(link.qkd.protocol)
        params = cls._params(link)
        rate_hz = link.qkd.pulse_rate_hz
        if isinstance(params, DecoyBB84Params):
            curve = decoy_bb84_key_rate(params, [link.length_km])
            mu = float(curve.mu[0]) if curve.mu is not None else None
            return cls._decoy(link, params, float(curve.key_rate_per_pulse[0]),
                              float(curve.qber[0]), mu)
        grid = np.linspace(0.0, link.length_km * 1.5 + 50.0, 400)
        curve = spec.evaluate(params, grid)
        model = cls(link, params, rate_hz, 0.0, 0.0)
        model._grid_km = grid
        model._grid_rate = np.asarray(curve.key_rate_per_pulse, dtype=float)
        model._grid_qber = np.asarray(curve.qber, dtype=float)
        model.nominal_rate_bps = float(np.interp(link.length_km, grid, model._grid_rate)) * rate_hz
        model.nominal_qber = float(np.interp(link.length_km, grid, model._grid_qber))
        return model

    def evaluate(self, t_s: FloatArray, efficiency_factor: FloatArray,
                 dark_factor: FloatArray, intercept: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(secret key rate in bit/s, QBER) at each time, for the given conditions."""
        if self.repeater is not None:
            # A repeater chain: its key rate as computed, scaled to first order by the end
            # detectors' ageing; an intercept-resend attack adds its 25 % errors.
            qber = self.repeater.qber * (1.0 - intercept) + 0.25 * intercept
            rate = self.repeater.secret_key_rate_bps * efficiency_factor
            return np.where(intercept > 0, 0.0, rate) * np.ones_like(t_s), qber
        if isinstance(self.params, DecoyBB84Params) and self.mu is not None:
            p = self.params
            y0 = p.dark_count_prob * dark_factor
            for profile, counts in self.raman:
                y0 = y0 + counts * load_profile(profile, t_s)
            channel = 10.0 ** (-(p.loss_db_per_km * self.link.length_km + p.extra_loss_db) / 10)
            eta = p.detector_efficiency * efficiency_factor * channel
            # Intercept-resend on a fraction f of the pulses: errors 1/4 on those (BB84).
            e_det = p.misalignment_error * (1.0 - intercept) + 0.25 * intercept
            varied = dataclasses.replace(p, dark_count_prob=1e-12, misalignment_error=0.0)
            object.__setattr__(varied, "dark_count_prob", np.minimum(y0, 0.5))
            object.__setattr__(varied, "misalignment_error", e_det)
            rate, parts = decoy_bb84_rate_at(varied, eta, np.full_like(eta, self.mu))
            return (np.maximum(rate, 0.0) * self.pulse_rate_hz,
                    np.asarray(parts["qber"], dtype=float))
        assert self._grid_km is not None and self._grid_rate is not None
        assert self._grid_qber is not None
        loss = self.link.loss_db_per_km if self.link.loss_db_per_km > 0 else 0.2
        extra_km = -10.0 * np.log10(np.maximum(efficiency_factor, 1e-12)) / loss
        length = self.link.length_km + extra_km
        rate = np.interp(length, self._grid_km, self._grid_rate, right=0.0)
        qber = np.interp(length, self._grid_km, self._grid_qber)
        qber = qber * (1.0 - intercept) + 0.25 * intercept
        # A QBER rise beyond the system's own reduces the rate like h(e) terms do; above 11 %
        # nothing survives. Linear fade is a plain stand-in for protocols without a formula here.
        fade = np.clip((0.11 - qber) / max(0.11 - self.nominal_qber, 1e-9), 0.0, 1.0)
        return rate * fade * self.pulse_rate_hz, qber

    def without_raman(self) -> LinkModel:
        """The same link with its classical channels dark: evaluate it beside this model to
        tell the QBER Raman noise adds (the model is otherwise shared, not rebuilt)."""
        return dataclasses.replace(self, raman=())


def ageing_factors(link: Link, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(detector efficiency factor, dark-count factor) over time: exponential ageing per day,
    dark counts doubling every ``dark_count_doubling_k`` of a daily temperature cycle (peak
    mid-afternoon)."""
    a = link.ageing
    eff = (1.0 - a.efficiency_loss_per_day) ** (t_s / DAY_S)
    temp = a.temperature_amplitude_k * np.sin(2 * math.pi * (t_s / DAY_S - 0.375))
    dark = 2.0 ** (temp / a.dark_count_doubling_k)
    return np.asarray(eff), np.asarray(dark)
