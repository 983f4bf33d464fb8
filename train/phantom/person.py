"""A phantom person: sex, body size, limb muscle mass, and the DEXA result that mass would give.

The generative direction follows PHANTOM.md: person -> muscle mass -> (anatomy, DEXA). Nothing
here looks at an image; the image only ever sees the anatomy built from these masses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MUSCLE_DENSITY_G_CM3 = 1.06
IMPLANTS = ("dhs", "nail", "hip_prosthesis", "knee_prosthesis")


@dataclass(frozen=True)
class Leg:
    """Per-leg anatomy in cm (patient plane). side 'R' sits on the image's left (AP convention)."""

    side: str
    thigh_muscle_kg: float
    calf_muscle_kg: float
    hip_x: float  # femoral head centre, signed (R negative)
    knee_x: float
    ankle_x: float
    femur_radius: float  # shaft outer radius
    cortex: float  # cortical thickness
    head_radius: float
    neck_shaft_deg: float
    femoral_offset: float  # head centre to the femoral shaft axis (sets the 5-9 deg valgus)
    muscle_offset: float  # compartment centre offset from soft-tissue centre (lateral +)
    implant: str | None


@dataclass(frozen=True)
class Person:
    person_id: str
    sex: str
    age: float
    height_m: float
    weight_kg: float
    bmi: float
    arm_muscle_kg: float
    lean_factor: float  # DEXA lean soft tissue per kg skeletal muscle
    dexa_alm_kg: float
    dexa_smi: float
    thigh_len: float  # hip joint to knee joint, cm
    shank_len: float  # knee joint to ankle, cm
    depth_ratio: float  # AP depth / ML width of the thigh: a frontal film sees the width only
    fat_mid_cm: float  # subcutaneous fat thickness at mid-thigh
    calf_fat_cm: float
    myosteatosis: float  # fraction of fat mixed into muscle attenuation
    peak_t: float  # where along the thigh the muscle CSA peaks (0 hip, 1 knee)
    distal_frac: float  # CSA above the condyles relative to the peak
    body_depth: float  # AP half-depth of the lower trunk
    legs: tuple[Leg, Leg]

    def as_row(self) -> dict:
        d = asdict(self)
        d.pop("legs")
        return d

    @property
    def thigh_muscle_volume_cm3(self) -> float:
        return sum(l.thigh_muscle_kg for l in self.legs) * 1000.0 / MUSCLE_DENSITY_G_CM3


def _clipped_normal(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float) -> float:
    return float(np.clip(rng.normal(mean, sd), lo, hi))


def sample_person(rng: np.random.Generator, person_id: str) -> Person:
    """Draw one older adult of a hip cohort (PHANTOM.md section 1-3)."""
    female = rng.random() < 0.70
    sex = "F" if female else "M"
    age = _clipped_normal(rng, 77.0, 7.0, 65.0, 95.0)
    height_cm = _clipped_normal(rng, 151.0 if female else 164.0, 6.0, 135.0, 185.0)
    h = height_cm / 100.0
    z_bmi = rng.normal()
    bmi = float(np.clip(23.0 + 3.5 * z_bmi, 15.5, 38.0))
    weight = bmi * h * h
    # Latent muscularity: SMI correlates moderately with BMI, as in real cohorts.
    z_smi = 0.45 * z_bmi + np.sqrt(1 - 0.45**2) * rng.normal()
    smi_true = float(np.clip((5.6 + 0.8 * z_smi) if female else (7.1 + 0.9 * z_smi), 3.2, 10.5))
    lean_factor = _clipped_normal(rng, 1.10, 0.025, 1.02, 1.18)
    # True appendicular skeletal muscle mass, then its split: a thigh film can never see all of it.
    asmm = smi_true * h * h / lean_factor
    arm_share = _clipped_normal(rng, 0.25, 0.04, 0.14, 0.36)
    calf_share = _clipped_normal(rng, 0.30, 0.04, 0.18, 0.42)
    leg_mass = asmm * (1 - arm_share)
    left_frac = _clipped_normal(rng, 0.5, 0.015, 0.45, 0.55)
    thigh_mass = leg_mass * (1 - calf_share)
    calf_mass = leg_mass * calf_share
    e = rng.normal(0.0, 0.03)  # DEXA's own error
    alm_dexa = asmm * lean_factor * (1 + e)

    thigh_len = 0.245 * height_cm * _clipped_normal(rng, 1.0, 0.03, 0.92, 1.08)
    shank_len = 0.225 * height_cm * _clipped_normal(rng, 1.0, 0.03, 0.92, 1.08)
    depth_ratio = float(rng.uniform(0.80, 0.95))
    if female:
        fat = _clipped_normal(rng, 1.9 + 0.13 * (bmi - 23) + 0.3 * rng.normal(), 0.25, 1.0, 3.0)
        calf_fat = fat * rng.uniform(0.45, 0.7)
    else:
        fat = _clipped_normal(rng, 1.1 + 0.09 * (bmi - 23) + 0.2 * rng.normal(), 0.15, 0.5, 1.8)
        calf_fat = fat * rng.uniform(0.45, 0.7)
    myo = float(rng.uniform(0.0, 0.12) if rng.random() < 0.5 else 0.0)
    hip_half = _clipped_normal(rng, 8.9 if female else 8.5, 0.5, 7.5, 10.5)
    # Stance: knees and ankles together or apart.
    knee_half = float(rng.uniform(5.5, 11.0))
    ankle_half = float(np.clip(knee_half + rng.normal(0.0, 2.0), 3.5, 15.0))

    has_implant = rng.random() < 0.25
    implant_side = "R" if rng.random() < 0.5 else "L"
    implant = str(rng.choice(IMPLANTS, p=[0.35, 0.25, 0.3, 0.1])) if has_implant else None

    legs = []
    for side, frac in (("R", 1 - left_frac), ("L", left_frac)):
        sgn = -1.0 if side == "R" else 1.0
        legs.append(
            Leg(
                side=side,
                thigh_muscle_kg=thigh_mass * frac,
                calf_muscle_kg=calf_mass * frac,
                hip_x=sgn * hip_half,
                knee_x=sgn * knee_half,
                ankle_x=sgn * ankle_half,
                femur_radius=float(rng.uniform(1.25, 1.6)),
                cortex=float(rng.uniform(0.4, 0.8)),
                head_radius=float(rng.uniform(2.1, 2.35) if female else rng.uniform(2.3, 2.6)),
                neck_shaft_deg=float(rng.uniform(120, 135)),
                femoral_offset=float(rng.uniform(3.6, 4.6)),
                muscle_offset=float(rng.normal(-0.2, 0.35)),
                implant=implant if (has_implant and side == implant_side) else None,
            )
        )
    return Person(
        person_id=person_id,
        sex=sex,
        age=round(age, 1),
        height_m=round(h, 3),
        weight_kg=round(weight, 1),
        bmi=round(bmi, 2),
        arm_muscle_kg=asmm * arm_share,
        lean_factor=lean_factor,
        dexa_alm_kg=float(alm_dexa),
        dexa_smi=float(alm_dexa / (h * h)),
        thigh_len=thigh_len,
        shank_len=shank_len,
        depth_ratio=depth_ratio,
        fat_mid_cm=fat,
        calf_fat_cm=float(calf_fat),
        myosteatosis=myo,
        peak_t=float(rng.uniform(0.22, 0.32)),
        distal_frac=float(rng.uniform(0.33, 0.42)),
        body_depth=_clipped_normal(rng, 10.5 + 0.35 * (bmi - 23), 1.0, 8.0, 16.0),
        legs=(legs[0], legs[1]),
    )
