"""The analytic neck of one subject: cord, canal, spine, soft tissue and pathology, as tissue labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from benchmark.data.synth.contrasts import Float, Tissue

_T = Tissue


@dataclass(frozen=True)
class Lesion:
    """An ellipsoidal MS lesion in normalised cord coordinates (p = LR / a, q = AP / b) and z in mm."""

    p: float
    q: float
    z: float
    rp: float
    rq: float
    rz: float


@dataclass(frozen=True)
class Injury:
    """A swollen cord segment centred at z with hyperintense oedema; optional haemorrhage core."""

    z: float
    half_length: float  # mm
    swelling: float  # relative increase of both half-axes at the centre
    hemorrhage: bool


@dataclass(frozen=True)
class Compression:
    """Antero-posterior flattening of the cord at a disc level."""

    z: float
    severity: float  # fraction of the AP diameter lost at the centre
    width: float  # mm, Gaussian sigma along z


@dataclass(frozen=True)
class Anatomy:
    """Analytic description of one neck. Lengths in mm; z is inferior -> superior, 0 near C4-C5.

    The cord centre is (xc(z), yc(z)); u = x - xc and v = y - yc are the in-plane offsets
    (v > 0 anterior).
    """

    sex: str
    age: int
    a0: float  # cord LR half-axis
    b0: float  # cord AP half-axis
    enlargement_z: float
    enlargement_sigma: float
    enlargement_lr: float
    enlargement_ap: float
    wobble: tuple[float, float, float]  # amplitude, period (mm), phase of the size variation
    x0: float
    x_amp: float
    x_period: float
    x_phase: float
    lordosis: float  # AP excursion of the path (mm)
    lordosis_z: float
    tilt: float  # AP slope of the path (mm / mm)
    csf_lr: float
    csf_ant: float
    csf_post: float
    level_spacing: float
    level_phase: float
    disc_height: float
    body_half_width: float
    body_half_depth: float
    neck_rx: float
    neck_ry: float
    neck_dv: float
    fat_thickness: float
    fascia_angles: tuple[float, float]  # degrees from the midline of two posterior fat planes
    trachea_radius: float
    spinous_length: float  # mm behind the canal
    disc_hydration: float  # 1 healthy nucleus, lower = degenerated (darker on T2w)
    lesions: tuple[Lesion, ...] = ()
    compressions: tuple[Compression, ...] = ()
    injury: Injury | None = None


_NECK_EXPONENT = 2.6  # superellipse exponent of the neck outline (2 = ellipse)


def sample_anatomy(rng: np.random.Generator, pathology: str) -> Anatomy:
    """Draw one subject's anatomy; ``pathology`` is "HC", "DCM", "SCI" or "MS"."""
    sex = "F" if rng.random() < 0.5 else "M"
    size = 0.95 if sex == "F" else 1.0
    age = int(rng.integers(22, 45) if pathology == "HC" else rng.integers(30, 72))
    spacing = float(rng.uniform(16.5, 19.0))
    phase = float(rng.uniform(0.0, spacing))
    disc_height = float(rng.uniform(4.0, 5.5))
    disc_centres = [phase + disc_height / 2 + k * spacing for k in range(-6, 6)]
    lesions: tuple[Lesion, ...] = ()
    compressions: tuple[Compression, ...] = ()
    injury = None
    if pathology == "MS":
        count = int(rng.integers(1, 5))
        lesions = tuple(
            Lesion(p=float(rng.uniform(-0.55, 0.55)), q=float(rng.uniform(-0.55, 0.45)), z=float(rng.uniform(-45, 35)),
                   rp=float(rng.uniform(0.22, 0.4)), rq=float(rng.uniform(0.25, 0.45)), rz=float(rng.uniform(3.0, 9.0)))
            for _ in range(count)
        )
    elif pathology == "DCM":
        candidates = [z for z in disc_centres if -35.0 <= z <= 15.0]
        count = min(len(candidates), int(rng.integers(1, 3)))
        chosen = rng.choice(len(candidates), size=count, replace=False)
        compressions = tuple(
            Compression(z=float(candidates[i]), severity=float(rng.uniform(0.2, 0.55)),
                        width=float(rng.uniform(3.0, 5.0)))
            for i in sorted(chosen)
        )
    elif pathology == "SCI":
        injury = Injury(z=float(rng.uniform(-30, 15)), half_length=float(rng.uniform(8.0, 16.0)),
                        swelling=float(rng.uniform(0.12, 0.3)), hemorrhage=bool(rng.random() < 0.5))
    return Anatomy(
        sex=sex,
        age=age,
        a0=float(rng.uniform(5.0, 5.9) * size),
        b0=float(rng.uniform(3.3, 3.8) * size),
        enlargement_z=float(rng.uniform(-25.0, -12.0)),
        enlargement_sigma=float(rng.uniform(15.0, 22.0)),
        enlargement_lr=float(rng.uniform(0.10, 0.20)),
        enlargement_ap=float(rng.uniform(0.0, 0.08)),
        wobble=(float(rng.uniform(0.0, 0.04)), float(rng.uniform(25.0, 60.0)), float(rng.uniform(0, 2 * math.pi))),
        x0=float(rng.normal(0.0, 1.0)),
        x_amp=float(rng.uniform(0.0, 2.0)),
        x_period=float(rng.uniform(120.0, 250.0)),
        x_phase=float(rng.uniform(0, 2 * math.pi)),
        lordosis=float(rng.uniform(3.0, 10.0)),
        lordosis_z=float(rng.uniform(-15.0, 10.0)),
        tilt=float(rng.uniform(-0.08, 0.08)),
        csf_lr=float(rng.uniform(2.8, 4.0)),
        csf_ant=float(rng.uniform(1.8, 3.0)),
        csf_post=float(rng.uniform(2.0, 3.5)),
        level_spacing=spacing,
        level_phase=phase,
        disc_height=disc_height,
        body_half_width=float(rng.uniform(7.5, 9.0) * size),
        body_half_depth=float(rng.uniform(6.5, 8.0) * size),
        neck_rx=float(rng.uniform(52.0, 62.0) * size),
        neck_ry=float(rng.uniform(52.0, 60.0) * size),
        neck_dv=float(rng.uniform(4.0, 10.0)),
        fascia_angles=(float(rng.uniform(25.0, 40.0)), float(rng.uniform(55.0, 70.0))),
        fat_thickness=float(rng.uniform(3.0, 8.0)),
        trachea_radius=float(rng.uniform(7.0, 9.0)),
        spinous_length=float(rng.uniform(16.0, 24.0)),
        disc_hydration=float(rng.uniform(0.35, 0.7) if pathology == "DCM" else rng.uniform(0.8, 1.0)),
        lesions=lesions,
        compressions=compressions,
        injury=injury,
    )


def _gauss(z: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((z - centre) / sigma) ** 2)


@dataclass(frozen=True)
class Profiles:
    """Per-z quantities of the anatomy (1-D arrays over z), in mm and relative to the path centre."""

    xc: np.ndarray  # path centre, LR
    yc: np.ndarray  # path centre, AP
    a: np.ndarray  # cord LR half-axis
    b: np.ndarray  # cord AP half-axis
    cord_v: np.ndarray  # cord centre AP offset from the path (compression pushes it back)
    canal_a: np.ndarray  # canal LR half-axis
    canal_b: np.ndarray  # canal AP half-axis
    canal_v: np.ndarray  # canal centre AP offset from the path
    body_v: np.ndarray  # AP offset of the vertebral bodies' posterior wall
    disc: np.ndarray  # bool: z is inside a disc
    endplate: np.ndarray  # bool: z is a vertebral endplate (cortical)
    arch: np.ndarray  # bool: z crosses the posterior arch
    pedicle: np.ndarray  # bool: z crosses the pedicles / lateral masses
    level: np.ndarray  # mm above the lower disc's bottom, in [0, level_spacing)


def centreline(anat: Anatomy, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cord path (x, y) in mm for z in mm: lordotic in AP, gently wandering in LR."""
    x = anat.x0 + anat.x_amp * np.sin(2 * np.pi * z / anat.x_period + anat.x_phase)
    y = anat.lordosis * (np.cos(np.pi * (z - anat.lordosis_z) / 150.0) - 1.0) + anat.tilt * z
    return x, y


def profiles(anat: Anatomy, z: np.ndarray) -> Profiles:
    """Evaluate the per-z anatomy along ``z`` (mm)."""
    z = np.asarray(z, dtype=np.float64)
    xc, yc = centreline(anat, z)
    enlargement = _gauss(z, anat.enlargement_z, anat.enlargement_sigma)
    amp, period, phase = anat.wobble
    wobble = amp * np.sin(2 * np.pi * z / period + phase)
    a_base = anat.a0 * (1 + anat.enlargement_lr * enlargement + wobble)
    b_base = anat.b0 * (1 + anat.enlargement_ap * enlargement - 0.5 * wobble)
    a, b = a_base.copy(), b_base.copy()
    cord_ant, cord_post = b_base.copy(), -b_base.copy()
    effacement = np.zeros_like(z)
    for comp in anat.compressions:
        w = _gauss(z, comp.z, comp.width)
        loss = comp.severity * 2 * b_base * w
        cord_ant -= 0.7 * loss  # disc / osteophyte from the front
        cord_post += 0.3 * loss  # ligamentum flavum infolding from the back
        a *= 1 + 0.3 * comp.severity * w
        effacement = np.maximum(effacement, w * min(1.0, comp.severity / 0.2))
    if anat.injury is not None:
        w = np.clip(1 - ((z - anat.injury.z) / (1.4 * anat.injury.half_length)) ** 2, 0, None) ** 2
        a *= 1 + anat.injury.swelling * w
        cord_ant += anat.injury.swelling * w * b_base
        cord_post -= anat.injury.swelling * w * b_base
        effacement = np.maximum(effacement, 0.8 * w)
    b = (cord_ant - cord_post) / 2
    cord_v = (cord_ant + cord_post) / 2
    canal_ant = np.maximum(cord_ant + anat.csf_ant * (1 - effacement) + 0.15, cord_ant + 0.15)
    canal_ant = np.minimum(canal_ant, b_base + anat.csf_ant)
    canal_post = np.minimum(cord_post - anat.csf_post * (1 - 0.8 * effacement) - 0.15, cord_post - 0.15)
    canal_post = np.maximum(canal_post, -b_base - anat.csf_post)
    canal_a = np.maximum(a_base + anat.csf_lr, a + 0.6)
    level = np.mod(z - anat.level_phase, anat.level_spacing)
    disc = level < anat.disc_height
    endplate = ~disc & ((level < anat.disc_height + 0.8) | (level > anat.level_spacing - 0.8))
    arch = (level > 0.5 * anat.disc_height) & (level < anat.level_spacing - 5.0)
    pedicle = (level > anat.disc_height + 2.0) & (level < anat.level_spacing - 3.0)
    return Profiles(
        xc=xc, yc=yc, a=a, b=b, cord_v=cord_v, canal_a=canal_a, canal_b=(canal_ant - canal_post) / 2,
        canal_v=(canal_ant + canal_post) / 2, body_v=b_base + anat.csf_ant + 1.0,
        disc=disc, endplate=endplate, arch=arch, pedicle=pedicle, level=level,
    )


def _level_position(pr: Profiles) -> np.ndarray:
    """Position (mm) within the vertebral level, 0 at the top of the disc below, as (1, 1, nz) float32."""
    return pr.level[None, None, :].astype(Float)


def _span(coords: np.ndarray, lo: float, hi: float) -> slice:
    """Index range of sorted 1-D ``coords`` that lies within [lo, hi]."""
    start = int(np.searchsorted(coords, lo, side="left"))
    stop = int(np.searchsorted(coords, hi, side="right"))
    return slice(start, max(start, stop))


def label_volume(anat: Anatomy, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Tissue label (uint8, :class:`Tissue`) at every point of the RAS grid ``xs`` x ``ys`` x ``zs`` (mm).

    ``xs``, ``ys``, ``zs`` are increasing 1-D coordinate arrays; the result has shape
    (len(xs), len(ys), len(zs)). Structures are painted in order, later ones over earlier ones.
    """
    pr = profiles(anat, zs)
    f = Float
    shape = (len(xs), len(ys), len(zs))
    lab = np.zeros(shape, dtype=np.uint8)
    u = (xs[:, None, None] - pr.xc[None, None, :]).astype(f)  # (nx, 1, nz)
    v = (ys[None, :, None] - pr.yc[None, None, :]).astype(f)  # (1, ny, nz)

    # neck: a rounded-box cross-section, subcutaneous fat around muscle, fat planes between muscles
    nv = v - anat.neck_dv
    n = _NECK_EXPONENT
    lab[np.abs(u / anat.neck_rx) ** n + np.abs(nv / anat.neck_ry) ** n <= 1] = _T.FAT
    rx, ry = anat.neck_rx - anat.fat_thickness, anat.neck_ry - anat.fat_thickness
    lab[np.abs(u / rx) ** n + np.abs(nv / ry) ** n <= 1] = _T.MUSCLE
    # fascial fat planes between the paraspinal muscles: oblique sheets running back and outwards
    post = _span(ys, float(pr.yc.min()) - 80.0, float(pr.yc.max()) - 12.0)
    if post.stop > post.start:
        vp, sub = v[:, post], lab[:, post]
        for angle in anat.fascia_angles:
            c, s = np.float32(math.cos(math.radians(angle))), np.float32(math.sin(math.radians(angle)))
            # the quadratic term bends the sheet the way the muscle bellies curve around the neck
            distance = np.abs(np.abs(u) * c + (vp + 16.0) * s - 0.004 * u * u)
            sheet = (distance < 0.4) & (sub == _T.MUSCLE) & (vp < -18.0)
            sub[sheet] = _T.FAT

    body_front = float(np.max(pr.body_v)) + 2 * anat.body_half_depth
    # vessels and airway, evaluated in a box in front of the spine
    sx = _span(xs, float(pr.xc.min()) - 40, float(pr.xc.max()) + 40)
    sy = _span(ys, float(pr.yc.min()) + 8, float(pr.yc.max()) + body_front + 2 * anat.trachea_radius + 12)
    if sx.stop > sx.start and sy.stop > sy.start:
        ub, vb, sub = u[sx], v[:, sy], lab[sx, sy]
        for side in (-1.0, 1.0):
            carotid = (anat.body_half_width + 12, body_front - 3, 3.5)
            jugular = (anat.body_half_width + 19, body_front - 6, 5.0)
            for du, dv, r in (carotid, jugular):
                sub[((ub - side * du) ** 2 + (vb - dv) ** 2) <= r * r] = _T.VESSEL
        sub[(ub**2 + (vb - body_front - anat.trachea_radius - 6) ** 2) <= anat.trachea_radius**2] = _T.AIR

    # spine: posterior elements, pedicles, anterior wall, bodies and discs, epidural fat, canal
    sx = _span(xs, float(pr.xc.min()) - 30, float(pr.xc.max()) + 30)
    sy = _span(ys, float(pr.yc.min()) - 45, float(pr.yc.max()) + body_front + 1)
    if sx.stop > sx.start and sy.stop > sy.start:
        _paint_spine(lab[sx, sy], u[sx], v[:, sy], anat, pr)

    # cord, grey matter and pathology, in a tight box around the canal
    reach_x = float(pr.canal_a.max()) + 1
    reach_y = float(np.max(np.abs(pr.canal_v) + pr.canal_b)) + 1
    sx = _span(xs, float(pr.xc.min()) - reach_x, float(pr.xc.max()) + reach_x)
    sy = _span(ys, float(pr.yc.min()) - reach_y, float(pr.yc.max()) + reach_y)
    if sx.stop > sx.start and sy.stop > sy.start:
        _paint_cord(lab[sx, sy], u[sx], v[:, sy], zs, anat, pr)
    return lab


def _paint_spine(lab: np.ndarray, u: np.ndarray, v: np.ndarray, anat: Anatomy, pr: Profiles) -> None:
    """Paint bone, disc, ligament, epidural fat and CSF into ``lab`` (a view) in place."""
    z3 = (None, None, slice(None))
    canal_a, canal_b, canal_v = (arr[z3].astype(Float) for arr in (pr.canal_a, pr.canal_b, pr.canal_v))
    body_v = pr.body_v[z3].astype(Float)
    vc = v - canal_v
    rho = (u / canal_a) ** 2 + (vc / canal_b) ** 2  # canal ellipse metric

    # posterior arch (laminae + spinous process) and ligamentum flavum between arches
    arch_outer = (u / (canal_a + 4.5)) ** 2 + (vc / (canal_b + 4.0)) ** 2 <= 1
    posterior = vc < 0.3 * canal_b
    ring = arch_outer & posterior & (rho > 1)
    arch = pr.arch[z3]
    lab[ring & arch] = _T.MARROW
    lab[ring & ~arch & ((u / (canal_a + 2.0)) ** 2 + (vc / (canal_b + 2.0)) ** 2 <= 1)] = _T.LIGAMENT
    # spinous process: points back and down (its level phase shifts with depth), tapers, ~2 cm long
    depth = -vc - canal_b  # mm behind the canal, (1, ny, nz)
    along = np.mod(_level_position(pr) + 0.45 * depth, anat.level_spacing)
    within = (along > anat.disc_height + 1.0) & (along < anat.level_spacing - 6.0 + 0.1 * depth)
    spinous = (depth > 2.0) & (depth < anat.spinous_length) & within & (np.abs(u) < 2.4 - 0.05 * depth)
    lab[spinous] = _T.MARROW
    lab[spinous & (np.abs(u) > 1.4 - 0.04 * depth)] = _T.CORTICAL

    # pedicles and lateral masses beside the canal
    lateral = (np.abs(u) > canal_a - 1.0) & (np.abs(u) < canal_a + 6.0) & (v > canal_v - 2.0) & (v < body_v + 3.0)
    lab[lateral & pr.pedicle[z3]] = _T.MARROW

    # anterior wall: posterior longitudinal ligament, or herniated disc at disc levels
    wall = (np.abs(u) < anat.body_half_width) & (v > canal_v) & (v < body_v)
    disc = pr.disc[z3]
    lab[wall & ~disc] = _T.LIGAMENT
    lab[wall & disc] = _T.ANNULUS

    # vertebral bodies (marrow, cortical rim and endplates) and discs (nucleus, annulus)
    m = (u / anat.body_half_width) ** 4 + ((v - body_v - anat.body_half_depth) / anat.body_half_depth) ** 4
    inside = m <= 1
    rim = m > (1 - 1.2 / anat.body_half_depth) ** 4
    lab[inside & ~disc] = _T.MARROW
    lab[inside & ~disc & (rim | pr.endplate[z3])] = _T.CORTICAL
    lab[inside & disc] = _T.ANNULUS
    lab[inside & disc & (m < 0.45)] = _T.NUCLEUS

    # epidural fat behind the dura, then the CSF-filled canal
    lab[posterior & ((u / (canal_a + 1.2)) ** 2 + (vc / (canal_b + 1.6)) ** 2 <= 1) & (rho > 1)] = _T.FAT
    lab[rho <= 1] = _T.CSF


def _paint_cord(lab: np.ndarray, u: np.ndarray, v: np.ndarray, zs: np.ndarray, anat: Anatomy, pr: Profiles) -> None:
    """Paint cord white matter, the grey-matter butterfly and intramedullary pathology in place."""
    z3 = (None, None, slice(None))
    p = u / pr.a[z3].astype(Float)  # (nx, 1, nz)
    q = (v - pr.cord_v[z3].astype(Float)) / pr.b[z3].astype(Float)  # (1, ny, nz)
    r2 = p * p + q * q
    cord = r2 <= 1
    lab[cord] = _T.WM
    ap = np.abs(p)
    ventral = ((ap - 0.36) / 0.21) ** 2 + ((q - 0.28) / 0.30) ** 2 <= 1
    cos_t, sin_t = math.cos(math.radians(25)), math.sin(math.radians(25))
    along = (ap - 0.22) * sin_t - (q + 0.40) * cos_t
    across = (ap - 0.22) * cos_t + (q + 0.40) * sin_t
    dorsal = (along / 0.38) ** 2 + (across / 0.085) ** 2 <= 1
    intermediate = ((ap - 0.22) / 0.16) ** 2 + (q / 0.26) ** 2 <= 1
    commissure = (ap < 0.25) & (np.abs(q - 0.02) < 0.08)
    lab[(ventral | dorsal | intermediate | commissure) & (r2 <= 0.86**2)] = _T.GM

    for lesion in anat.lesions:
        zr = _span(zs, lesion.z - lesion.rz, lesion.z + lesion.rz)
        if zr.stop <= zr.start:
            continue
        dz = ((zs[zr] - lesion.z) / lesion.rz).astype(Float)[None, None, :]
        inside = ((p[:, :, zr] - lesion.p) / lesion.rp) ** 2 + ((q[:, :, zr] - lesion.q) / lesion.rq) ** 2 + dz**2 <= 1
        lab[:, :, zr][inside & cord[:, :, zr]] = _T.LESION
    if anat.injury is not None:
        inj = anat.injury
        zr = _span(zs, inj.z - inj.half_length, inj.z + inj.half_length)
        if zr.stop > zr.start:
            dz2 = (((zs[zr] - inj.z) / inj.half_length) ** 2).astype(Float)[None, None, :]
            sub_r2 = r2[:, :, zr]
            lab[:, :, zr][sub_r2 + dz2 <= 0.85] = _T.EDEMA
            if inj.hemorrhage:
                core = ((p[:, :, zr] / 0.3) ** 2 + ((q[:, :, zr] + 0.1) / 0.35) ** 2 + dz2 / 0.12) <= 1
                lab[:, :, zr][core] = _T.HEMORRHAGE
