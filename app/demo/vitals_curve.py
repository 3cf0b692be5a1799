"""Plausible vital signs over a dosing session, for the demo seed and the simulated tablet.

A smooth rise peaking 60-120 min after the initial dose (as DESIGN.md describes for MDMA),
back toward baseline by 6 h, with measurement noise and an occasional excursion.
"""

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Baseline:
    sysbp: float = 122
    diabp: float = 78
    pulse: float = 72
    temp: float = 36.7
    spo2: float = 98


def _effect(minutes_after_dose: float) -> float:
    """0 before the dose, rising to 1 at ~90 min, fading by ~6 h."""
    if minutes_after_dose <= 0:
        return 0.0
    return (
        math.exp(-(((minutes_after_dose - 90) / 80) ** 2))
        if minutes_after_dose < 90
        else (math.exp(-(((minutes_after_dose - 90) / 150) ** 2)))
    )


def observations(
    minutes_after_dose: float,
    rng: random.Random,
    baseline: Baseline = Baseline(),
    excursion_chance: float = 0.08,
) -> list[dict[str, object]]:
    effect = _effect(minutes_after_dose)
    excursion = 1.0 if rng.random() < excursion_chance else 0.0
    sysbp = baseline.sysbp + 28 * effect + 30 * excursion + rng.gauss(0, 4)
    diabp = baseline.diabp + 14 * effect + 12 * excursion + rng.gauss(0, 3)
    pulse = baseline.pulse + 22 * effect + 18 * excursion + rng.gauss(0, 3)
    temp = baseline.temp + 0.6 * effect + 0.9 * excursion + rng.gauss(0, 0.1)
    spo2 = min(100.0, baseline.spo2 + rng.gauss(0, 0.7))
    return [
        {"code": "SYSBP", "value": round(sysbp), "unit": "mmHg"},
        {"code": "DIABP", "value": round(min(diabp, sysbp - 20)), "unit": "mmHg"},
        {"code": "PULSE", "value": round(pulse), "unit": "beats/min"},
        {"code": "TEMP", "value": round(temp, 1), "unit": "C"},
        {"code": "OXYSAT", "value": round(spo2), "unit": "%"},
    ]
