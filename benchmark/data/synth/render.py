"""Image formation: field of view, k-space sampling, bias, noise, EPI artefacts, and NIfTI encoding."""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np
import scipy.fft
from scipy import ndimage

from benchmark.data.synth.anatomy import Anatomy, centreline, label_volume
from benchmark.data.synth.contrasts import (CORD_TISSUES, MP2RAGE_INV1, MP2RAGE_INV2, NOISE, SIGNAL,
                                            TEXTURE_AMPLITUDE, Float, Tissue, lut)
from benchmark.data.synth.specs import GENERATOR_VERSION, LOW_FIELD_NOISE, VENDORS, Acquisition, Plane, Site, Vendor

_T = Tissue


@dataclass(frozen=True)
class Geometry:
    """An axis-aligned voxel grid in canonical RAS+ order."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]  # mm
    origin: tuple[float, float, float]  # world position (mm) of voxel (0, 0, 0)'s centre
    plane: Plane

    @property
    def slice_axis(self) -> int:
        return 2 if self.plane == "axial" else 0

    @property
    def inplane_axes(self) -> tuple[int, int]:
        return (0, 1) if self.plane == "axial" else (1, 2)

    @property
    def affine(self) -> np.ndarray:
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = self.origin
        return aff

    def centres(self, axis: int) -> np.ndarray:
        return self.origin[axis] + self.spacing[axis] * np.arange(self.shape[axis])

    def supersampling(self) -> tuple[int, int, int]:
        """Sub-samples per voxel along each axis (at least 2): <= 0.5 mm in plane, <= 1 mm across slices."""
        out = []
        for axis in range(3):
            target = 1.0 if axis == self.slice_axis else 0.5
            out.append(max(2, math.ceil(self.spacing[axis] / target - 1e-6)))
        return tuple(out)  # type: ignore[return-value]

    def fine_centres(self, axis: int, factor: int) -> np.ndarray:
        step = self.spacing[axis] / factor
        start = self.origin[axis] - self.spacing[axis] / 2 + step / 2
        return start + step * np.arange(self.shape[axis] * factor)

@dataclass
class RenderedVolume:
    """A generated image and mask in canonical RAS+ order, with the orientation they are stored in."""

    image: np.ndarray  # int16 stored values
    mask: np.ndarray  # uint8 0/1
    geometry: Geometry
    orientation: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, bytes]:
        """(image .nii.gz bytes, mask .nii.gz bytes), reoriented and deterministically compressed."""
        image, affine = reorient(self.image, self.geometry.affine, self.orientation)
        mask, _ = reorient(self.mask, self.geometry.affine, self.orientation)
        return (nifti_bytes(image, affine, f"cordbench synth v{GENERATOR_VERSION} image"),
                nifti_bytes(mask, affine, f"cordbench synth v{GENERATOR_VERSION} cord mask"))


def _block_mean(arr: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Average ``arr`` over non-overlapping blocks of ``factors`` voxels."""
    if factors == (1, 1, 1):
        return arr
    nx, ny, nz = (arr.shape[i] // factors[i] for i in range(3))
    view = arr.reshape(nx, factors[0], ny, factors[1], nz, factors[2])
    return view.mean(axis=(1, 3, 5), dtype=Float)


def _kspace_sample(fine: np.ndarray, geom: Geometry, factors: tuple[int, int, int], vendor: Vendor) -> np.ndarray:
    """Complex image on ``geom`` from supersampled ``fine`` signal.

    Across slices the slice profile is a box (block average); in plane the k-space is truncated to
    the acquired matrix (Gibbs ringing), optionally apodised, and zero-filled to the reconstructed one.
    """
    slice_axis = geom.slice_axis
    slice_factors = tuple(factors[i] if i == slice_axis else 1 for i in range(3))
    thick = _block_mean(fine, slice_factors)  # type: ignore[arg-type]
    axes = geom.inplane_axes
    spectrum = scipy.fft.fftshift(scipy.fft.fftn(thick.astype(np.complex64), axes=axes), axes=axes)
    index: list[slice] = [slice(None)] * 3
    for axis in axes:
        n_fine, n_out = spectrum.shape[axis], geom.shape[axis]
        start = n_fine // 2 - n_out // 2
        index[axis] = slice(start, start + n_out)
    spectrum = spectrum[tuple(index)]
    for axis in axes:
        n_out = geom.shape[axis]
        k = np.abs(np.arange(n_out) - n_out // 2) / (n_out / 2 * vendor.acquired_fraction)
        hann = 0.5 * (1 + np.cos(np.pi * np.clip(k, 0, 1)))
        window = np.where(k <= 1.0, (1 - vendor.apodisation) + vendor.apodisation * hann, 0.0)
        shape = [1, 1, 1]
        shape[axis] = n_out
        spectrum *= window.reshape(shape).astype(np.float32)
    image = scipy.fft.ifftn(scipy.fft.ifftshift(spectrum, axes=axes), axes=axes)
    gain = (geom.shape[axes[0]] * geom.shape[axes[1]]) / (thick.shape[axes[0]] * thick.shape[axes[1]])
    return (image * np.float32(gain)).astype(np.complex64)


def _bias_field(geom: Geometry, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Smooth multiplicative receive field: random low-order polynomial plus posterior coil gain."""
    coords = [np.linspace(-1, 1, geom.shape[axis], dtype=Float) for axis in range(3)]
    x, y, z = coords[0][:, None, None], coords[1][None, :, None], coords[2][None, None, :]
    c = rng.normal(0.0, strength, size=7).astype(Float)
    log_field = c[0] * x + c[1] * y + c[2] * z + c[3] * x * x + c[4] * y * y + c[5] * z * z + c[6] * x * y
    coil = np.float32(rng.uniform(0.2, 0.5)) * (-y)  # spine coil behind the neck: posterior brighter
    return np.exp(log_field + coil).astype(Float)


def _texture(geom: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Smooth zero-mean, unit-std random field (~5 mm correlation length) on ``geom``."""
    noise = rng.standard_normal(geom.shape, dtype=Float)
    sigma = [max(0.5, 5.0 / s) for s in geom.spacing]
    smooth = ndimage.gaussian_filter(noise, sigma=sigma, mode="wrap")
    return smooth / np.float32(max(float(smooth.std()), 1e-6))


def _complex_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    real = rng.standard_normal(shape, dtype=Float)
    imag = rng.standard_normal(shape, dtype=Float)
    return (real + 1j * imag).astype(np.complex64) * np.float32(sigma)


@dataclass(frozen=True)
class EpiArtefacts:
    """Parameters of the EPI-specific artefacts of one volume."""

    displacement_mm: float  # amplitude of the level-periodic field along the phase-encoding axis
    gradient_mm: float  # shim gradient: displacement change over the slab
    dropout_z: tuple[float, ...]  # centres (mm) of through-plane dephasing slabs
    dropout_depth: tuple[float, ...]
    ghost: float  # Nyquist ghost amplitude relative to the object
    ghost_phase: float


def _sample_epi(rng: np.random.Generator, anat: Anatomy, z_lo: float, z_hi: float) -> EpiArtefacts:
    discs = [anat.level_phase + anat.disc_height / 2 + k * anat.level_spacing for k in range(-8, 8)]
    discs = [z for z in discs if z_lo + 5 <= z <= z_hi - 5]
    count = min(len(discs), int(rng.integers(1, 3)))
    chosen = sorted(rng.choice(len(discs), size=count, replace=False)) if count else []
    return EpiArtefacts(
        displacement_mm=float(rng.uniform(1.5, 3.0)),
        gradient_mm=float(rng.uniform(-1.5, 1.5)),
        dropout_z=tuple(float(discs[i]) for i in chosen),
        dropout_depth=tuple(float(rng.uniform(0.45, 0.8)) for _ in chosen),
        ghost=float(rng.uniform(0.06, 0.14)),
        ghost_phase=float(rng.uniform(0, 2 * math.pi)),
    )


def _epi_displacement(anat: Anatomy, epi: EpiArtefacts, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                      centre: tuple[float, float, float]) -> np.ndarray:
    """Displacement (mm, +y = anterior) of the B0 field map; strongest near bodies, periodic in levels."""
    cx, cy, cz = centre
    lateral = (((x - cx) / 18.0) ** 2)[:, None, None]
    anterior = (((y - cy - 10.0) / 16.0) ** 2)[None, :, None]
    spatial = np.exp(-0.5 * lateral - 0.5 * anterior)
    periodic = np.cos(2 * np.pi * (z - anat.level_phase) / anat.level_spacing)[None, None, :]
    gradient = (epi.gradient_mm * (z - cz) / 35.0)[None, None, :]
    return (epi.displacement_mm * spatial * periodic + gradient).astype(Float)


def _distort_labels(lab: np.ndarray, shift_vox: np.ndarray) -> np.ndarray:
    """Resample labels along axis 1 so that content at y appears at y + shift (nearest neighbour)."""
    ny = lab.shape[1]
    src = np.arange(ny, dtype=Float)[None, :, None] - shift_vox
    idx = np.clip(np.rint(src), 0, ny - 1).astype(np.intp)
    return np.take_along_axis(lab, idx, axis=1)


def plan_geometry(anat: Anatomy, acq: Acquisition, site: Site, rng: np.random.Generator,
                  offset: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Geometry:
    """Field of view of one acquisition, centred on the cord (as an operator would) with jitter."""
    inplane = acq.inplane_mm[site.resolution_index % len(acq.inplane_mm)]
    thickness = acq.slice_mm[site.resolution_index % len(acq.slice_mm)]
    if acq.plane == "axial":
        shape = (acq.matrix[0], acq.matrix[1], acq.n_slices)
        spacing = (inplane, inplane, thickness)
        if anat.compressions:
            zc = float(np.mean([c.z for c in anat.compressions])) + float(rng.uniform(-8, 8))
        else:
            zc = float(rng.uniform(-22.0, 2.0))
    else:
        shape = (acq.n_slices, acq.matrix[0], acq.matrix[1])
        spacing = (thickness, inplane, inplane)
        zc = float(rng.uniform(-12.0, 4.0))
        if anat.injury is not None:
            zc = float(np.clip(anat.injury.z + rng.uniform(-10, 10), -25, 10))
    xc, yc = centreline(anat, np.array([zc]))
    dv = 0.0 if acq.plane == "axial" else float(rng.uniform(2.0, 8.0))  # sagittal FOVs show more of the neck
    centre = (float(xc[0]) + float(rng.uniform(-3, 3)) + offset[0],
              float(yc[0]) + dv + float(rng.uniform(-3, 3)) + offset[1], zc + offset[2])
    origin = tuple(round(c - (n - 1) / 2 * s, 4) for c, n, s in zip(centre, shape, spacing))
    return Geometry(shape=shape, spacing=spacing, origin=origin, plane=acq.plane)  # type: ignore[arg-type]


def render_volume(anat: Anatomy, acq: Acquisition, site: Site, rng: np.random.Generator,
                  offset: tuple[float, float, float] = (0.0, 0.0, 0.0), *,
                  epi_artefacts: bool | EpiArtefacts = True) -> RenderedVolume:
    """Image and exact cord mask of ``anat`` as acquired by ``acq`` on ``site``.

    ``offset`` moves the field of view (mm, RAS), e.g. to reposition a second session.
    ``epi_artefacts``: for an EPI acquisition, False renders it without distortion, drop-out and
    ghost; an :class:`EpiArtefacts` replaces the randomly drawn ones (the noise stays the same).
    """
    vendor = VENDORS[site.manufacturer]
    geom = plan_geometry(anat, acq, site, rng, offset)
    factors = geom.supersampling()
    xs, ys, zs = (geom.fine_centres(axis, factors[axis]) for axis in range(3))
    labels = label_volume(anat, xs, ys, zs)
    params: dict[str, Any] = {}
    epi: EpiArtefacts | None = None
    if acq.contrast == "EPI" and epi_artefacts is not False:
        epi = _sample_epi(rng, anat, float(zs[0]), float(zs[-1]))
        if isinstance(epi_artefacts, EpiArtefacts):
            epi = epi_artefacts
        centre = tuple(float(np.mean(c)) for c in (xs, ys, zs))
        field_mm = _epi_displacement(anat, epi, xs, ys, zs, centre)  # type: ignore[arg-type]
        labels = _distort_labels(labels, field_mm / np.float32(ys[1] - ys[0]))
        params["epi"] = {"displacement_mm": round(epi.displacement_mm, 3), "gradient_mm": round(epi.gradient_mm, 3),
                         "dropout_z_mm": [round(z, 2) for z in epi.dropout_z],
                         "dropout_depth": [round(d, 3) for d in epi.dropout_depth],
                         "ghost": round(epi.ghost, 4), "phase_encoding_axis": "AP"}

    cord_fraction = _block_mean(np.isin(labels, CORD_TISSUES).astype(Float), factors)
    mask = (cord_fraction >= 0.5).astype(np.uint8)
    soft = _block_mean(lut({_T.MUSCLE: 1.0, _T.FAT: 1.0})[labels], factors)
    noise_factor = vendor.noise_factor * (LOW_FIELD_NOISE if site.field_strength < 2 else 1.0)
    sigma = NOISE[acq.contrast] * noise_factor
    bias = _bias_field(geom, rng, vendor.bias_strength)
    texture = 1 + np.float32(TEXTURE_AMPLITUDE) * _texture(geom, rng) * soft
    scale = vendor.scale * float(rng.uniform(0.85, 1.15))

    if acq.contrast == "MP2RAGE":
        s1 = _kspace_sample(MP2RAGE_INV1[labels], geom, factors, vendor) * texture
        s2 = _kspace_sample(MP2RAGE_INV2[labels], geom, factors, vendor) * texture
        s1 = s1 * bias + _complex_noise(geom.shape, sigma, rng)
        s2 = s2 * bias + _complex_noise(geom.shape, sigma, rng)
        uni = np.real(s1 * np.conj(s2)) / (np.abs(s1) ** 2 + np.abs(s2) ** 2 + np.float32(1e-12))
        stored = np.clip(np.rint((uni + 0.5) * 4095.0), 0, 4095)
        scale = 4095.0
    else:
        table = SIGNAL[acq.contrast].copy()
        table[_T.NUCLEUS] *= anat.disc_hydration
        signal = _kspace_sample(table[labels], geom, factors, vendor) * texture
        if acq.contrast == "EPI":
            signal = _epi_image_effects(signal, geom, anat, epi)
        elif acq.contrast == "DWI":
            # residual motion / eddy-current blur left after averaging the diffusion volumes
            signal = ndimage.gaussian_filter(signal.real, sigma=(0.6, 0.6, 0.0)).astype(np.complex64)
        signal = signal * bias
        if epi is not None:
            ghost = np.roll(signal, geom.shape[1] // 2, axis=1) * np.complex64(
                epi.ghost * complex(math.cos(epi.ghost_phase), math.sin(epi.ghost_phase)))
            signal = signal * np.float32(1 - epi.ghost) + ghost
        magnitude = np.abs(signal + _complex_noise(geom.shape, sigma, rng))
        stored = np.clip(np.rint(magnitude * scale), 0, 32767)
    params.update({"contrast": acq.contrast, "plane": acq.plane, "voxel_size_mm": [round(s, 4) for s in geom.spacing],
                   "noise_sigma_relative": round(sigma, 5), "bias_strength": vendor.bias_strength,
                   "signal_scale": round(scale, 3), "supersampling": list(factors),
                   "acquired_fraction": vendor.acquired_fraction})
    return RenderedVolume(image=stored.astype(np.int16), mask=mask, geometry=geom, orientation="RAS", parameters=params)


def _epi_image_effects(signal: np.ndarray, geom: Geometry, anat: Anatomy, epi: EpiArtefacts | None) -> np.ndarray:
    """T2* blurring along phase encoding, intensity pile-up from the distortion, drop-out slabs."""
    out = ndimage.gaussian_filter1d(signal.real, sigma=0.7, axis=1).astype(Float)
    if epi is None:
        return out.astype(np.complex64)
    xs, ys, zs = (geom.centres(axis) for axis in range(3))
    centre = tuple(float(np.mean(c)) for c in (xs, ys, zs))
    field_mm = _epi_displacement(anat, epi, xs, ys, zs, centre)  # type: ignore[arg-type]
    jacobian = 1.0 + np.gradient(field_mm, geom.spacing[1], axis=1)
    out /= np.clip(jacobian, 0.4, 2.5)
    _, yc = centreline(anat, zs)
    for z_drop, depth in zip(epi.dropout_z, epi.dropout_depth):
        along = np.exp(-0.5 * ((zs - z_drop) / 4.0) ** 2)[None, None, :]
        # dephasing is strongest in front, near the bone-disc interfaces
        anterior = 1 / (1 + np.exp(-(ys[None, :, None] - yc[None, None, :] - 4.0) / 5.0))
        out *= (1 - depth * along * (0.35 + 0.65 * anterior)).astype(Float)
    return out.astype(np.complex64)

# --------------------------------------------------------------------------------------------------
# NIfTI encoding
# --------------------------------------------------------------------------------------------------


def reorient(array: np.ndarray, affine: np.ndarray, axcodes: str) -> tuple[np.ndarray, np.ndarray]:
    """Reorder/flip a RAS+ ``array`` and its ``affine`` so the array axes follow ``axcodes`` (e.g. "PSR")."""
    transform = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")),
                                                nib.orientations.axcodes2ornt(tuple(axcodes)))
    data = np.ascontiguousarray(nib.orientations.apply_orientation(array, transform))
    new_affine = affine @ nib.orientations.inv_ornt_aff(transform, array.shape)
    return data, new_affine


def nifti_bytes(array: np.ndarray, affine: np.ndarray, description: str) -> bytes:
    """Deterministic .nii.gz bytes (gzip mtime 0, no file name, fixed header fields)."""
    img = nib.Nifti1Image(array, affine)
    header = img.header
    header.set_data_dtype(array.dtype)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = description.encode("ascii")[:79]
    raw = img.to_bytes()
    return gzip.compress(raw, compresslevel=6, mtime=0)
