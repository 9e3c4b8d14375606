"""The parts of a topology link: its QKD system, the classical channels sharing its fiber,
detector ageing and satellite pass windows (pydantic models, read by ``topology``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from qnetkit.physics.dwdm import (
    band_of,
    channel_name_frequency_thz,
    check_spacing_ghz,
    consecutive_wavelengths_nm,
    grid_frequency_thz,
    wavelength_to_frequency_thz,
)

Engine = Literal["analytic", "monte-carlo"]


class Strict(BaseModel):
    """Unknown fields are errors and a loaded model is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class QkdSystem(Strict):
    """The QKD system on a link: a protocol of ``qnetkit.keyrate`` at a preset, or the
    Monte-Carlo engine of ``qnetkit.qkd`` (decoy BB84 only)."""

    protocol: str = Field(default="decoy-bb84", description=(
        "key-rate protocol: a `qnetkit keyrate` sub-command other than plob"))
    preset: str | None = Field(default=None, description=(
        "the protocol's device preset; null: the protocol's default preset"))
    engine: Engine = Field(default="analytic", description=(
        "analytic: the protocol's rate formula; monte-carlo: the simulated qkd link "
        "(decoy-bb84 only)"))
    pulse_rate_hz: float = Field(default=1e9, gt=0, description="source pulse (clock) rate")
    detector_efficiency: float | None = Field(default=None, gt=0, le=1, description=(
        "Bob's transmittance times detector efficiency (0-1); null: the preset's"))
    dark_count_prob: float | None = Field(default=None, ge=0, lt=1, description=(
        "background (dark + stray) click probability per pulse; null: the preset's"))
    misalignment_error: float | None = Field(default=None, ge=0, le=0.5, description=(
        "probability a photon hits the wrong detector (0-0.5); null: the preset's"))
    ec_efficiency: float | None = Field(default=None, ge=1, description=(
        "f_EC of the system: error-correction inefficiency (>= 1); null: the preset's"))
    sifting_factor: float | None = Field(default=None, gt=0, le=1, description=(
        "kept fraction after basis sifting (0-1); null: the preset's"))
    decoys: Literal["infinite", "vacuum+weak", "none"] | None = Field(default=None, description=(
        "decoy method; 'none' for SARG04 only; null: the preset's"))
    mu: float | None = Field(default=None, gt=0, description=(
        "fixed signal intensity (mean photons per pulse); null: optimised or the preset's"))
    nu: float | None = Field(default=None, gt=0, description=(
        "fixed weak-decoy intensity (mean photons per pulse); null: the preset's"))
    block_s: float = Field(default=60.0, gt=0, description="key block (estimation) period")
    # Provenance, read by the published-rate comparison (tests, README): the real protocol when
    # the registry has no model of it, where the device values come from, and whether any of
    # them was chosen with the link's published rate in view (a calibration, not a check).
    stand_in_for: str | None = Field(default=None, max_length=80,
                                     description="the real protocol a registry one stands in for")
    source: str = Field(default="", description="where the device values come from")
    calibrated: bool = Field(
        default=False, description="a device value was chosen with the published rate in view")

    def param_overrides(self) -> dict[str, Any]:
        """The protocol parameters this system sets (unset fields keep the preset's value)."""
        return {name: getattr(self, name) for name in SYSTEM_PARAMS
                if getattr(self, name) is not None}


# QkdSystem fields passed to the protocol's parameter dataclass when set.
SYSTEM_PARAMS = ("detector_efficiency", "dark_count_prob", "misalignment_error", "ec_efficiency",
                 "sifting_factor", "decoys", "mu", "nu")


class ClassicalChannelSpec(Strict):
    """Classical DWDM channels sharing the fiber: Raman noise in the quantum channel.

    ``count`` channels on consecutive slots of the ITU-T G.694.1 grid, ``grid_spacing_ghz`` apart
    and upwards in frequency from the first, each launched at ``launch_power_dbm``. The first one
    is at ``wavelength_nm`` or at ``grid_channel``: a grid index n (f = 193.1 THz + n x spacing)
    or a 100 GHz channel name such as ``C34`` (190.0 + 3.4 THz = 193.4 THz, 1550.12 nm). With
    neither, it is a C-band channel at an unstated wavelength with the published C-band Raman
    coefficient (``qnetkit.physics.raman.RAMAN_ANCHOR_BETA_PER_KM_PER_NM``), as before wavelengths
    could be given; only a C-band quantum channel accepts that.
    """

    count: int = Field(default=1, ge=1, le=200, description=(
        "number of channels, on consecutive grid slots from the first upwards in frequency"))
    wavelength_nm: float | None = Field(default=None, ge=1260, le=1675, description=(
        "wavelength of the first channel (nm); give this or grid_channel"))
    grid_channel: int | Annotated[str, Field(pattern=r"^C\d{2}$")] | None = Field(
        default=None, description=(
            "first channel on the ITU grid: index n (193.1 THz + n x grid_spacing_ghz) or a "
            "100 GHz channel name 'C34' (190.0 THz + 34 x 0.1 THz)"))
    grid_spacing_ghz: float = Field(default=100.0, gt=0, description=(
        "grid spacing between consecutive channels (GHz): 12.5, 25, 50, 100 or n x 100"))
    launch_power_dbm: float = Field(default=0.0, ge=-40, le=30, description=(
        "launch power of each channel (dBm) at full load"))
    direction: Literal["co", "counter"] = Field(default="co", description=(
        "co: launched at the quantum transmitter's end; counter: at the receiver's end"))
    raman_cross_section_per_km_per_nm: float | None = Field(default=None, ge=0, description=(
        "effective Raman cross-section beta (1/(km nm)) into the quantum channel, overriding the "
        "one computed from the Raman spectrum at each channel's wavelength; null: computed"))
    load_profile: Literal["flat", "business", "evening"] = Field(default="business", description=(
        "traffic over the day scaling the launch power: flat, business (peak 13:00), evening "
        "(peak 20:30)"))

    @model_validator(mode="after")
    def _grid(self) -> ClassicalChannelSpec:
        from qnetkit.errors import ParameterError

        if self.wavelength_nm is not None and self.grid_channel is not None:
            raise ValueError("give either wavelength_nm or grid_channel, not both")
        try:
            check_spacing_ghz(self.grid_spacing_ghz)
            for wavelength in self.wavelengths_nm() or ():
                if band_of(wavelength) is None:
                    raise ValueError(f"channel at {wavelength:.2f} nm is outside 1260-1675 nm")
        except ParameterError as exc:
            raise ValueError(str(exc)) from None
        return self

    def wavelengths_nm(self) -> tuple[float, ...] | None:
        """Wavelengths (nm) of the ``count`` channels; None when no wavelength is given."""
        if self.wavelength_nm is not None:
            first = wavelength_to_frequency_thz(self.wavelength_nm)
        elif isinstance(self.grid_channel, str):
            first = channel_name_frequency_thz(self.grid_channel)
        elif self.grid_channel is not None:
            first = grid_frequency_thz(self.grid_channel, self.grid_spacing_ghz)
        else:
            return None
        return consecutive_wavelengths_nm(first, self.count, self.grid_spacing_ghz)


class Ageing(Strict):
    """Detector ageing and temperature drift."""

    efficiency_loss_per_day: float = Field(default=0.0, ge=0, lt=1, description=(
        "fraction of the detector efficiency lost per day, compounded (0-1)"))
    dark_count_doubling_k: float = Field(default=8.0, gt=0,
                                         description="dark counts double every this many kelvin")
    temperature_amplitude_k: float = Field(default=0.0, ge=0, description=(
        "amplitude of the daily temperature cycle (sine, warmest at 15:00 of each day)"))


class PassWindows(Strict):
    """Satellite passes: a pass of ``duration_s`` every ``period_s``, first at ``first_s``."""

    period_s: float = Field(default=86400.0, gt=0, description="time from one pass to the next")
    duration_s: float = Field(default=300.0, gt=0, description="length of each pass")
    first_s: float = Field(default=0.0, ge=0, description="start of the first pass in the run")


class RepeaterChainSpec(Strict):
    """A quantum-repeater chain as one link of the twin (``kind: repeater-chain``): ``nodes``
    stations (the two ends included) over the link's length, its secret key from QKD on the
    delivered entangled pairs (``qnetkit.entanglement``)."""

    nodes: int = Field(default=3, ge=2, le=129, description=(
        "stations of the chain, the two end nodes included (segments: nodes - 1)"))
    scheme: Literal["single-click", "double-click", "spdc"] = Field(
        default="double-click", description="heralded elementary-link scheme")
    protocol: Literal["swap-asap", "nested"] = Field(
        default="swap-asap", description="swapping protocol (nested needs 2^k segments)")
    memories: int = Field(default=1, ge=1, le=1024, description=(
        "memories per node and side (multiplexing)"))
    memory_t2_s: float | None = Field(default=None, gt=0, description=(
        "memory coherence time T2 (s); unset: no decoherence while waiting"))
    memory_efficiency: float = Field(default=1.0, gt=0, le=1, description=(
        "memory retrieval efficiency (0-1)"))
    purify: Literal["bbpssw", "dejmps"] | None = Field(default=None, description=(
        "entanglement purification at each nesting level, if any"))
    rounds: int = Field(default=0, ge=0, le=8, description="purification rounds per level")
    cutoff_s: float | None = Field(default=None, gt=0, description=(
        "discard pairs stored longer than this (s)"))
    link_fidelity: float | None = Field(default=None, ge=0.25, le=1, description=(
        "override: Werner elementary pairs of this fidelity"))
    link_success_prob: float | None = Field(default=None, gt=0, le=1, description=(
        "override: success probability of one elementary-link attempt (0-1)"))
    swap_success_prob: float = Field(default=1.0, gt=0, le=1, description=(
        "success probability of a Bell-state measurement (0-1)"))
    attempt_s: float | None = Field(default=None, gt=0, description=(
        "override: duration of one attempt (s); default the heralding round trip"))
    key_protocol: Literal["bbm92", "e91"] = Field(default="bbm92", description=(
        "QKD run on the delivered pairs (asymptotic secret fraction)"))
    pairs: int = Field(default=2000, ge=100, le=1_000_000, description=(
        "pairs simulated when the chain has no closed form (seeded, once per link)"))


__all__ = ["SYSTEM_PARAMS", "Ageing", "ClassicalChannelSpec", "Engine", "PassWindows",
           "QkdSystem", "RepeaterChainSpec", "Strict"]
