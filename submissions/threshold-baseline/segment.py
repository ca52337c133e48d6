"""A deliberately simple, training-free cord segmentation: an example of a `command` submission.

For each axial slice (canonical RAS+, so slices are arr[:, :, k]) it takes a window around the image
centre, thresholds it with Otsu's method into a bright and a dark class, and keeps the connected blob of
either class that is closest to the centre and has a cord-like area (20-150 mm^2). It knows nothing about
contrasts, so it is a floor that any trained model should beat, not a competitor.

Usage: python segment.py INPUT.nii.gz OUTPUT.nii.gz
"""

import sys

import nibabel as nib
import numpy as np
from scipy import ndimage

MIN_AREA_MM2, MAX_AREA_MM2 = 20.0, 150.0


def otsu_threshold(values: np.ndarray) -> float:
    histogram, edges = np.histogram(values, bins=128)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    mean_low = np.cumsum(histogram * centres) / np.maximum(weight_low, 1)
    mean_high = (np.sum(histogram * centres) - np.cumsum(histogram * centres)) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(centres[int(np.argmax(between))])


def segment_slice(slice_: np.ndarray, pixel_area: float) -> np.ndarray:
    nx, ny = slice_.shape
    cx, cy = nx // 2, ny // 2
    wx, wy = max(nx // 5, 4), max(ny // 5, 4)
    window = slice_[cx - wx:cx + wx, cy - wy:cy + wy]
    mask = np.zeros(slice_.shape, dtype=bool)
    if window.size == 0 or np.ptp(window) == 0:
        return mask
    threshold = otsu_threshold(window)
    best, best_distance = None, np.inf
    for candidate in (window > threshold, window <= threshold):
        labels, count = ndimage.label(candidate)
        for index in range(1, count + 1):
            blob = labels == index
            area = blob.sum() * pixel_area
            if not MIN_AREA_MM2 <= area <= MAX_AREA_MM2:
                continue
            centroid = np.array(ndimage.center_of_mass(blob))
            distance = float(np.hypot(*(centroid - np.array([wx, wy]))))
            if distance < best_distance:
                best, best_distance = blob, distance
    if best is not None:
        mask[cx - wx:cx + wx, cy - wy:cy + wy] = best
    return mask


def main(input_path: str, output_path: str) -> None:
    image = nib.load(input_path)
    canonical = nib.as_closest_canonical(image)
    data = np.asarray(canonical.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    zooms = canonical.header.get_zooms()
    pixel_area = float(zooms[0] * zooms[1])
    mask = np.stack([segment_slice(data[:, :, k], pixel_area) for k in range(data.shape[2])], axis=2)
    out = nib.Nifti1Image(mask.astype(np.uint8), canonical.affine)
    # back to the input's own orientation so the output sits on the input grid
    native = out.as_reoriented(nib.orientations.ornt_transform(
        nib.orientations.io_orientation(canonical.affine), nib.orientations.io_orientation(image.affine)))
    nib.save(nib.Nifti1Image(np.asarray(native.dataobj, dtype=np.uint8), image.affine), output_path)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
