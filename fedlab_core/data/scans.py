"""Synthetic greyscale "scans" from hospitals whose scanners differ on purpose.

Every image is a slice through a body: an elliptical body outline, an organ
of smooth textured tissue inside it, a few bright vessels crossing the organ,
and — for label 1 — a small bright lesion somewhere in the organ. The clean
image then goes through the hospital's *scanner*: a lower acquired resolution,
blur, a contrast gain and brightness offset, and sensor noise. Hospitals with
different scanners see the same kind of patients through different eyes —
feature shift, the typical heterogeneity of medical imaging federations
(Li et al. 2021, "FedBN", ICLR). Illustrative teaching data, **not a clinical
tool**; see ``datasets/synthetic-scans.md`` for the card (lesion model, every
scanner knob and its formula, the default hospital profiles, measured speed).

>>> X, y = make_scans(4, rng=np.random.default_rng(0))
>>> X.shape, X.dtype, y.dtype
((4, 32, 32), dtype('float32'), dtype('int64'))
>>> bool(X.min() >= 0 and X.max() <= 1)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedlab_core.data.synthetic import hospital_names
from fedlab_core.partition import split_counts

__all__ = ["ScannerProfile", "NEUTRAL", "ARCHETYPES", "ScanCohort", "scanner_profiles",
           "make_scans", "apply_scanner", "make_scan_hospitals", "as_images", "pixel_names",
           "IMAGE_SIZE_RANGE", "default_lesion_size"]

IMAGE_SIZE_RANGE = (8, 256)

# Clean-image intensities (before the scanner), on a [0, 1] grey scale.
_AIR = 0.05                     # outside the body
_BODY = 0.25                    # soft tissue around the organ
_ORGAN = 0.5                    # the organ, = mid-grey, so the contrast knob leaves it in place
_BODY_SD, _ORGAN_SD = 0.02, 0.03     # per-image variation of those levels
_TEXTURE = 0.035                # amplitude of each of the organ's low-frequency waves
_N_WAVES = 3
_N_VESSELS = 3                  # vessel slots per image, each present with _VESSEL_P
_VESSEL_P = 0.6
_VESSEL_LEVEL = (0.04, 0.12)    # vessel brightness above the tissue: normal bright anatomy
_EDGE_PX = 0.5                  # soft edges (in pixels) so shapes do not alias
# Rendering works on blocks of about 2^20 pixels: memory stays bounded for any
# n, and every random number is drawn before, so blocks do not change results.
_BLOCK_PIXELS = 1 << 20


def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{name} = {value!r} is not allowed: {allowed}")


def _check_real(name: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or (value <= lo if lo_open else value < lo) or value > hi:
        _fail(name, value, f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return float(value)


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo \
            or (hi is not None and value > hi):
        _fail(name, value, f"must be an integer ≥ {lo}" if hi is None
              else f"must be an integer in [{lo}, {hi}]")
    return int(value)


@dataclass(frozen=True)
class ScannerProfile:
    """How one scanner turns a clean image ``x`` into what the hospital records.

    ``x' = clip(0.5 + contrast · (B R x − 0.5) + brightness + noise_sd · z, 0, 1)``
    with ``R`` the resolution loss (area-average down to ``round(resolution ·
    size)`` pixels a side, then nearest-neighbour back up), ``B`` a Gaussian blur
    of ``blur_sigma`` pixels and ``z`` standard normal per pixel. The default is
    the reference scanner: no offset, unit gain, mild noise, sharp, full
    resolution.

    >>> ScannerProfile()
    ScannerProfile(brightness=0.0, contrast=1.0, noise_sd=0.02, blur_sigma=0.0, resolution=1.0)
    >>> ScannerProfile(resolution=0)
    Traceback (most recent call last):
    ...
    ValueError: resolution = 0 is not allowed: must be in (0, 1]
    """

    brightness: float = 0.0     # added to every pixel (after the gain)
    contrast: float = 1.0       # gain around mid-grey 0.5
    noise_sd: float = 0.02      # sd of Gaussian sensor noise per pixel
    blur_sigma: float = 0.0     # sd of the Gaussian blur, in output pixels
    resolution: float = 1.0     # acquired size / output size (0.5: 16×16 shown at 32×32)

    def __post_init__(self) -> None:
        _check_real("brightness", self.brightness, -1, 1)
        _check_real("contrast", self.contrast, 0, 4)
        _check_real("noise_sd", self.noise_sd, 0, 1)
        _check_real("blur_sigma", self.blur_sigma, 0, 10)
        _check_real("resolution", self.resolution, 0, 1, lo_open=True)


NEUTRAL = ScannerProfile()

# What each kind of scanner looks like at scanner_shift = 1; at shift s a
# hospital's profile is NEUTRAL + s · (archetype − NEUTRAL) (+ a little
# jitter). Chosen so that each is visibly different on its own, and each
# breaks a different thing a model may rely on: the mean level, the noise
# floor, the fine detail.
ARCHETYPES: dict[str, ScannerProfile] = {
    "reference": NEUTRAL,
    "dark, low contrast": ScannerProfile(brightness=-0.15, contrast=0.55),
    "noisy": ScannerProfile(brightness=0.05, noise_sd=0.10),
    "blurry, low resolution": ScannerProfile(blur_sigma=1.0, resolution=0.5),
    "bright, high contrast": ScannerProfile(brightness=0.12, contrast=1.5, noise_sd=0.03),
}
# Small per-hospital variations (× shift), so two hospitals of the same kind still
# differ: added (brightness, noise_sd) or relative (contrast, blur_sigma: a
# sharp scanner stays exactly sharp).
_JITTER = dict(brightness=0.03, contrast=0.08, noise_sd=0.01, blur_sigma=0.2)
_RELATIVE = ("contrast", "blur_sigma")


def scanner_profiles(n_clients: int, *, shift: float,
                     rng: np.random.Generator) -> tuple[ScannerProfile, ...]:
    """One scanner per hospital: ``NEUTRAL + shift · (archetype − NEUTRAL) + shift · jitter``.

    The five :data:`ARCHETYPES` (reference; dark, low contrast; noisy; blurry,
    low resolution; bright, high contrast) are dealt to the hospitals in a
    random order (a fresh shuffle for every five hospitals), so with up to five
    hospitals no two have the same kind of scanner. The jitter is uniform in
    ``±0.03`` brightness, ``±8 %`` contrast, ``±0.01`` noise_sd and ``±20 %`` blur_sigma.
    ``shift = 0`` gives every hospital :data:`NEUTRAL` exactly. All random
    numbers are drawn whatever ``shift`` is, so the shift scales one fixed set
    of scanners.

    >>> p = scanner_profiles(3, shift=0.0, rng=np.random.default_rng(0))
    >>> all(q == NEUTRAL for q in p)
    True
    >>> p = scanner_profiles(5, shift=1.0, rng=np.random.default_rng(0))
    >>> sorted(round(q.resolution, 2) for q in p)
    [0.5, 1.0, 1.0, 1.0, 1.0]
    """
    K = _check_int("n_clients", n_clients, 1)
    shift = _check_real("shift", shift, 0, 1)
    kinds = list(ARCHETYPES.values())
    order = np.concatenate([rng.permutation(len(kinds)) for _ in range(-(-K // len(kinds)))])[:K]
    jitter = rng.uniform(-1.0, 1.0, size=(K, len(_JITTER)))
    profiles = []
    for k in range(K):
        arch = kinds[order[k]]
        values = {}
        for f in ("brightness", "contrast", "noise_sd", "blur_sigma", "resolution"):
            base = getattr(NEUTRAL, f)
            values[f] = base + shift * (getattr(arch, f) - base)
        for j, (f, scale) in enumerate(_JITTER.items()):
            if f in _RELATIVE:
                values[f] *= 1.0 + shift * scale * jitter[k, j]
            else:
                values[f] += shift * scale * jitter[k, j]
        values["noise_sd"] = max(values["noise_sd"], 0.0)
        values["blur_sigma"] = max(values["blur_sigma"], 0.0)
        profiles.append(ScannerProfile(**{f: float(v) for f, v in values.items()}))
    return tuple(profiles)


# ---------------------------------------------------------------------------
# the clean anatomy
# ---------------------------------------------------------------------------

def _check_lesion_size(lesion_size: Any, size: int) -> tuple[float, float]:
    ok = isinstance(lesion_size, (tuple, list)) and len(lesion_size) == 2 and all(
        not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating))
        and np.isfinite(v) for v in lesion_size)
    if not ok or not 0 < lesion_size[0] <= lesion_size[1] <= size / 2:
        _fail("lesion_size", lesion_size,
              f"must be (lo, hi) lesion diameters in pixels with 0 < lo ≤ hi ≤ image_size/2 "
              f"= {size / 2:g}")
    return float(lesion_size[0]), float(lesion_size[1])


def default_lesion_size(image_size: int) -> tuple[float, float]:
    """Lesion diameters used when none are given: 3 to 7 pixels at 32×32, in proportion otherwise.

    >>> default_lesion_size(32), default_lesion_size(64)
    ((3.0, 7.0), (6.0, 14.0))
    """
    return 3.0 * image_size / 32, 7.0 * image_size / 32


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))   # tanh form: no overflow warnings far from an edge


def _anatomy_params(n: int, size: int, lesion_size: tuple[float, float],
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every per-image random number, drawn up front in a fixed order (shape ``(n, …)``)."""
    px = 2.0 / size   # one pixel in the [-1, 1] image coordinates
    p: dict[str, np.ndarray] = {}
    u = rng.random
    p["body_c"] = 0.03 * rng.standard_normal((n, 2))
    p["body_ax"] = np.column_stack([0.82 + 0.1 * u(n), 0.65 + 0.2 * u(n)])
    p["body_rot"] = 0.1 * rng.standard_normal(n)
    p["body_level"] = _BODY + _BODY_SD * rng.standard_normal(n)
    p["organ_c"] = p["body_c"] + 0.06 * rng.standard_normal((n, 2))
    p["organ_ax"] = np.column_stack([0.45 + 0.15 * u(n), 0.36 + 0.14 * u(n)])
    p["organ_rot"] = np.pi * u(n)
    p["organ_level"] = _ORGAN + _ORGAN_SD * rng.standard_normal(n)
    # low-frequency waves: 0.5 to 2 cycles across the image, random direction and phase
    f = np.pi * (0.5 + 1.5 * u((n, _N_WAVES)))
    w = np.pi * u((n, _N_WAVES))
    p["wave_k"] = np.stack([f * np.cos(w), f * np.sin(w)], axis=-1)
    p["wave_phase"] = 2 * np.pi * u((n, _N_WAVES))
    p["wave_amp"] = _TEXTURE * (0.5 + 0.5 * u((n, _N_WAVES)))
    # vessels: straight lines across the organ, Gaussian profile, 0.4–0.8 px sd
    p["vessel_on"] = u((n, _N_VESSELS)) < _VESSEL_P
    p["vessel_dir"] = np.pi * u((n, _N_VESSELS))
    p["vessel_off"] = (u((n, _N_VESSELS)) - 0.5) * p["organ_ax"].min(axis=1, keepdims=True)
    p["vessel_sd"] = px * (0.4 + 0.4 * u((n, _N_VESSELS)))
    lo, hi = _VESSEL_LEVEL
    p["vessel_level"] = lo + (hi - lo) * u((n, _N_VESSELS))
    # lesion: drawn for every image (shown only where y = 1), so the label and
    # lesion_contrast change nothing else in the image
    radius = 0.5 * px * (lesion_size[0] + (lesion_size[1] - lesion_size[0]) * u(n))
    harm = 0.2 * u((n, 2))                    # 2nd (elongation) and 3rd (lobes) harmonic
    p["lesion_r"], p["lesion_harm"] = radius, harm
    p["lesion_phase"] = 2 * np.pi * u((n, 2))
    # centre in the organ's own polar coordinates, far enough in that the
    # whole lesion (radius ≤ r · (1 + Σ harm)) stays inside the organ
    reach = radius * (1.0 + harm.sum(axis=1)) + px
    rho = np.clip(1.0 - reach / p["organ_ax"].min(axis=1), 0.0, 0.8) * np.sqrt(u(n))
    alpha = 2 * np.pi * u(n)
    local = np.column_stack([p["organ_ax"][:, 0] * rho * np.cos(alpha),
                             p["organ_ax"][:, 1] * rho * np.sin(alpha)])
    c, s = np.cos(p["organ_rot"]), np.sin(p["organ_rot"])
    p["lesion_c"] = p["organ_c"] + np.column_stack([c * local[:, 0] - s * local[:, 1],
                                                    s * local[:, 0] + c * local[:, 1]])
    # mottled texture: one wave of 2.5–4 px wavelength
    lam = px * (2.5 + 1.5 * u(n))
    w = np.pi * u(n)
    p["mottle_k"] = (2 * np.pi / lam)[:, None] * np.column_stack([np.cos(w), np.sin(w)])
    p["mottle_phase"] = 2 * np.pi * u(n)
    return p


def _ellipse(xx, yy, centre, axes, rot, edge):
    """Soft inside-ness (0…1) of a rotated ellipse, for a block of images."""
    dx, dy = xx - centre[:, 0, None, None], yy - centre[:, 1, None, None]
    c, s = np.cos(rot)[:, None, None], np.sin(rot)[:, None, None]
    a, b = axes[:, 0, None, None], axes[:, 1, None, None]
    r = np.sqrt(((c * dx + s * dy) / a) ** 2 + ((-s * dx + c * dy) / b) ** 2)
    # (1 − r) · mean axis ≈ distance to the outline near it
    return _sigmoid((1.0 - r) * ((0.5 / edge) * (a + b)))


def _render(p: dict[str, np.ndarray], show: np.ndarray, lesion_contrast: float,
            lesion_texture: float, size: int, sl: slice) -> tuple[np.ndarray, np.ndarray]:
    """Clean images and lesion masks for the images ``sl`` of the batch (float32)."""
    # float32 throughout: half the memory traffic, and far more precision than a scan has
    q = {k: (v[sl].astype(np.float32) if v.dtype.kind == "f" else v[sl]) for k, v in p.items()}
    px = 2.0 / size
    edge = _EDGE_PX * px
    g = ((2 * np.arange(size) + 1) / size - 1).astype(np.float32)
    xx, yy = g[None, None, :], g[None, :, None]   # x runs along columns, y along rows

    body = _ellipse(xx, yy, q["body_c"], q["body_ax"], q["body_rot"], edge)
    organ = _ellipse(xx, yy, q["organ_c"], q["organ_ax"], q["organ_rot"], edge)
    tissue = np.broadcast_to(q["organ_level"][:, None, None], organ.shape).copy()
    for j in range(_N_WAVES):
        # cos(a + b) = cos a cos b − sin a sin b: two thin (n, 1, S), (n, S, 1)
        # factors instead of a cosine of every pixel
        a = q["wave_k"][:, j, 0, None, None] * xx + q["wave_phase"][:, j, None, None]
        b = q["wave_k"][:, j, 1, None, None] * yy
        amp = q["wave_amp"][:, j, None, None]
        tissue += (amp * np.cos(a)) * np.cos(b) - (amp * np.sin(a)) * np.sin(b)
    for j in range(_N_VESSELS):
        # signed distance from the line through the organ centre, moved along its normal
        th = q["vessel_dir"][:, j, None, None]
        d = (-np.sin(th) * (xx - q["organ_c"][:, 0, None, None])
             + np.cos(th) * (yy - q["organ_c"][:, 1, None, None]) - q["vessel_off"][:, j, None, None])
        level = np.where(q["vessel_on"][:, j], q["vessel_level"][:, j], 0)[:, None, None]
        tissue += level * np.exp(d * d * (-0.5 / q["vessel_sd"][:, j, None, None] ** 2))

    dx = xx - q["lesion_c"][:, 0, None, None]
    dy = yy - q["lesion_c"][:, 1, None, None]
    dist = np.sqrt(dx * dx + dy * dy)
    # cos/sin of 2θ and 3θ from c = cos θ, s = sin θ (no arctan per pixel)
    c = dx / np.maximum(dist, 1e-6)
    s = dy / np.maximum(dist, 1e-6)
    c2, s2 = c * c - s * s, 2 * c * s
    c3, s3 = c * (4 * c * c - 3), s * (3 - 4 * s * s)
    h, ph = q["lesion_harm"], q["lesion_phase"]
    outline = q["lesion_r"][:, None, None] * (
        1.0 + h[:, 0, None, None] * (c2 * np.cos(ph[:, 0, None, None]) - s2 * np.sin(ph[:, 0, None, None]))
        + h[:, 1, None, None] * (c3 * np.cos(ph[:, 1, None, None]) - s3 * np.sin(ph[:, 1, None, None])))
    mask = _sigmoid((outline - dist) * (1.0 / edge)) * organ
    a = q["mottle_k"][:, 0, None, None] * xx + q["mottle_phase"][:, None, None]
    b = q["mottle_k"][:, 1, None, None] * yy
    mottle = 1.0 + lesion_texture * (np.cos(a) * np.cos(b) - np.sin(a) * np.sin(b))
    amp = (lesion_contrast * show[sl]).astype(np.float32)[:, None, None]
    body_level = q["body_level"][:, None, None]
    img = _AIR + (body_level - _AIR) * body
    img += (tissue + amp * mask * mottle - body_level) * organ * body
    return img.astype(np.float32, copy=False), mask


def _anatomy(n: int, size: int, prevalence: np.ndarray, lesion_contrast: float,
             lesion_size: tuple[float, float], lesion_texture: float,
             rng: np.random.Generator, with_masks: bool = False):
    s_anat, s_lab = (np.random.default_rng(s) for s in rng.integers(0, 2**63, size=2))
    params = _anatomy_params(n, size, lesion_size, s_anat)
    y = (s_lab.random(n) < prevalence).astype(np.int64)
    X = np.empty((n, size, size), dtype=np.float32)
    M = np.empty((n, size, size), dtype=np.float32) if with_masks else None
    block = max(1, _BLOCK_PIXELS // (size * size))
    for start in range(0, n, block):
        sl = slice(start, min(n, start + block))
        X[sl], m = _render(params, y, lesion_contrast, lesion_texture, size, sl)
        if with_masks:
            M[sl] = m
    return X, y, M


# ---------------------------------------------------------------------------
# the scanner
# ---------------------------------------------------------------------------

def _scanner_matrix(size: int, profile: ScannerProfile) -> np.ndarray:
    """``L = B U A`` (size × size): area-average down, nearest up, Gaussian blur; ``x' = L x Lᵀ``."""
    m = max(1, round(profile.resolution * size))
    L = np.eye(size)
    if m < size:
        # A: acquired pixel i averages the output pixels it covers, [i·size/m, (i+1)·size/m),
        # weighting a pixel cut by the boundary by the part of it inside
        edges = np.arange(m + 1) * size / m
        lo, hi = edges[:-1, None], edges[1:, None]
        j = np.arange(size)[None, :]
        A = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None) / (size / m)
        # U: output pixel j shows the acquired pixel its centre falls in
        U = np.zeros((size, m))
        U[np.arange(size), np.minimum(((np.arange(size) + 0.5) * m / size).astype(int), m - 1)] = 1
        L = U @ A
    if profile.blur_sigma > 0:
        d = np.arange(size)[:, None] - np.arange(size)[None, :]
        B = np.exp(-0.5 * (d / profile.blur_sigma) ** 2)
        B[np.abs(d) > 4 * profile.blur_sigma] = 0.0
        # rows renormalised at the border: a flat image stays flat
        B /= B.sum(axis=1, keepdims=True)
        L = B @ L
    return L.astype(np.float32)


def apply_scanner(images: np.ndarray, profile: ScannerProfile = NEUTRAL, *,
                  rng: np.random.Generator) -> np.ndarray:
    """What a scanner records of clean ``images`` (n, size, size): see :class:`ScannerProfile`.

    ``x' = clip(0.5 + contrast · (L x Lᵀ − 0.5) + brightness + noise_sd · z, 0, 1)``,
    ``L = B U A`` (resolution loss then blur, both separable, so one batched
    matrix product per side does the whole batch). Showing the *same* clean
    images through every hospital's scanner is the clearest picture of feature
    shift.

    >>> x = np.full((1, 8, 8), 0.6, dtype=np.float32)
    >>> p = ScannerProfile(contrast=2.0, brightness=0.1, noise_sd=0.0)
    >>> round(float(apply_scanner(x, p, rng=np.random.default_rng(0))[0, 0, 0]), 4)  # 0.5 + 2·0.1 + 0.1
    0.8
    """
    if not isinstance(profile, ScannerProfile):
        _fail("profile", profile, "must be a ScannerProfile")
    X = np.asarray(images, dtype=np.float32)
    if X.ndim != 3 or X.shape[1] != X.shape[2]:
        _fail("images", f"array of shape {X.shape}", "must have shape (n, size, size)")
    size = X.shape[1]
    if profile.resolution < 1 or profile.blur_sigma > 0:
        L = _scanner_matrix(size, profile)
        X = np.matmul(np.matmul(L, X), L.T)
    else:
        X = X.copy()
    X = np.float32(0.5) + np.float32(profile.contrast) * (X - np.float32(0.5)) \
        + np.float32(profile.brightness)
    if profile.noise_sd > 0:
        X += np.float32(profile.noise_sd) * rng.standard_normal(X.shape, dtype=np.float32)
    return np.clip(X, 0.0, 1.0, out=X)


def make_scans(n: int, *, image_size: int = 32, prevalence: float = 0.5,
               profile: ScannerProfile = NEUTRAL, lesion_contrast: float = 0.15,
               lesion_size: tuple[float, float] | None = None, lesion_texture: float = 0.2,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` scans and their labels (1 = a lesion is present).

    Clean image: air 0.05; a rotated elliptical body, level ≈ 0.25; inside it
    an elliptical organ, level ≈ 0.5 (± 0.03 per image) plus three
    low-frequency waves (amplitude ≤ 0.035 each) and 0–3 bright vessels
    (straight, 0.4–0.8 px sd, +0.04…0.12). A lesion (``y ~ Bernoulli(prevalence)``)
    adds ``lesion_contrast · m(p) · (1 + lesion_texture · cos(k·p + φ))`` where
    ``m`` is the soft inside of an irregular outline
    ``r(θ) = R (1 + h₂ cos(2θ + φ₂) + h₃ cos(3θ + φ₃))`` (``2R`` uniform in
    ``lesion_size``, ``h ∈ [0, 0.2]``), at a uniform position well inside the organ.
    Then :func:`apply_scanner` with ``profile``. In the spirit of the
    procedural lesion phantoms of virtual imaging trials (Badano et al. 2018,
    JAMA Netw Open 1:e185474); illustrative, not a clinical tool.

    Random streams are split (anatomy, labels, scanner noise), so changing
    ``prevalence``, ``lesion_contrast`` or ``profile`` keeps the same patients.

    Parameters
    ----------
    n : int
        Number of images (≥ 0).
    image_size : int in [8, 256]
        Side in pixels.
    prevalence : float in [0, 1]
        Probability of a lesion.
    profile : ScannerProfile
        The scanner.
    lesion_contrast : float in [0, 1]
        How much brighter than the tissue a lesion is (0 = invisible).
    lesion_size : (lo, hi), optional
        Lesion diameters in pixels; default 3–7 px at 32×32, in proportion to ``image_size``.
    lesion_texture : float in [0, 1]
        Relative amplitude of the lesion's mottled texture.
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    X : float32 array (n, image_size, image_size), values in [0, 1]
    y : int64 array (n,)

    Examples
    --------
    >>> X, y = make_scans(2000, prevalence=0.3, rng=np.random.default_rng(1))
    >>> round(float(y.mean()), 1)
    0.3
    """
    n = _check_int("n", n, 0)
    size = _check_int("image_size", image_size, *IMAGE_SIZE_RANGE)
    prevalence = _check_real("prevalence", prevalence, 0, 1)
    lesion_contrast = _check_real("lesion_contrast", lesion_contrast, 0, 1)
    lesion_texture = _check_real("lesion_texture", lesion_texture, 0, 1)
    lesion_size = _check_lesion_size(default_lesion_size(size) if lesion_size is None
                                     else lesion_size, size)
    if not isinstance(profile, ScannerProfile):
        _fail("profile", profile, "must be a ScannerProfile")
    s_img, s_noise = (np.random.default_rng(s) for s in rng.integers(0, 2**63, size=2))
    X, y, _ = _anatomy(n, size, prevalence, lesion_contrast, lesion_size, lesion_texture, s_img)
    return apply_scanner(X, profile, rng=s_noise), y


# ---------------------------------------------------------------------------
# hospitals
# ---------------------------------------------------------------------------

# Same meaning as the cardiovascular cohort's knobs (datasets/synthetic-cardiovascular.md).
_LOGIT_SHIFT = 1.5     # label_shift = 1: prevalence logit ± 1.5 (50 % → 18 % … 82 %)
_SIZE_SHIFT = 2.0      # size_skew = 1: sizes ∝ exp(±2), largest/smallest up to e⁴ ≈ 55


@dataclass(frozen=True)
class ScanCohort:
    """Per-hospital scans: ``X[k]`` is ``(n_k, image_size²)`` float32, rows flattened row-major.

    ``as_images(X[k], image_size)`` gives the ``(n_k, image_size, image_size)`` images back.
    """

    names: tuple[str, ...]
    X: tuple[np.ndarray, ...]
    y: tuple[np.ndarray, ...]
    profiles: tuple[ScannerProfile, ...]
    prevalence: tuple[float, ...]          # each hospital's lesion probability
    image_size: int

    @property
    def feature_names(self) -> tuple[str, ...]:
        return pixel_names(self.image_size)


def _spread(rng: np.random.Generator, k: int) -> np.ndarray:
    # stratified positions in [-1, 1], as the cardiovascular cohort draws them
    return (rng.permutation(k) + rng.random(k)) / k * 2.0 - 1.0


def make_scan_hospitals(n_samples: int, n_clients: int, *, rng: np.random.Generator,
                        scanner_shift: float = 0.5, label_shift: float = 0.5,
                        size_skew: float = 0.5, image_size: int = 32,
                        base_prevalence: float = 0.5, lesion_contrast: float = 0.15,
                        lesion_size: tuple[float, float] | None = None,
                        lesion_texture: float = 0.2) -> ScanCohort:
    """Draw ``n_samples`` scans over ``n_clients`` hospitals, each with its own scanner.

    Hospital ``h`` (stratified positions ``u_h ∈ [−1, 1]``, as in
    :func:`fedlab_core.data.synthetic.make_cohort`):
    ``logit prevalence_h = logit(base_prevalence) + 1.5 · label_shift · u_h``;
    ``n_h ∝ exp(2 · size_skew · u'_h)`` (≥ 1 each, summing to ``n_samples``);
    scanner from :func:`scanner_profiles` with ``shift = scanner_shift``.
    The anatomy of all ``n_samples`` patients is drawn in one batch from its
    own stream, so the scanner knob changes how the same patients look, not who
    they are.

    >>> c = make_scan_hospitals(300, 3, rng=np.random.default_rng(0), size_skew=0.0)
    >>> c.names, [x.shape for x in c.X]
    (('Hospital A', 'Hospital B', 'Hospital C'), [(100, 1024), (100, 1024), (100, 1024)])
    """
    K = _check_int("n_clients", n_clients, 1)
    n = _check_int("n_samples", n_samples, K)
    size = _check_int("image_size", image_size, *IMAGE_SIZE_RANGE)
    scanner_shift = _check_real("scanner_shift", scanner_shift, 0, 1)
    label_shift = _check_real("label_shift", label_shift, 0, 1)
    size_skew = _check_real("size_skew", size_skew, 0, 1)
    base_prevalence = _check_real("base_prevalence", base_prevalence, 0, 1)
    lesion_contrast = _check_real("lesion_contrast", lesion_contrast, 0, 1)
    lesion_texture = _check_real("lesion_texture", lesion_texture, 0, 1)
    lesion_size = _check_lesion_size(default_lesion_size(size) if lesion_size is None
                                     else lesion_size, size)

    s_prof, s_scan, s_img, s_noise = (np.random.default_rng(s)
                                      for s in rng.integers(0, 2**63, size=4))
    u_label, u_size = _spread(s_prof, K), _spread(s_prof, K)
    profiles = scanner_profiles(K, shift=scanner_shift, rng=s_scan)
    counts = split_counts(n, np.exp(_SIZE_SHIFT * size_skew * u_size), minimum=1)
    if base_prevalence in (0.0, 1.0):
        prev = np.full(K, base_prevalence)   # logit ±∞: no shift can move it
    else:
        logit = math.log(base_prevalence / (1 - base_prevalence)) + _LOGIT_SHIFT * label_shift * u_label
        prev = 1.0 / (1.0 + np.exp(-logit))
    h = np.repeat(np.arange(K), counts)
    clean, y, _ = _anatomy(n, size, prev[h], lesion_contrast, lesion_size, lesion_texture, s_img)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    # a noise stream per hospital: one scanner's noise level leaves the others' noise as it was
    noise = [np.random.default_rng(s) for s in s_noise.integers(0, 2**63, size=K)]
    X = tuple(apply_scanner(clean[bounds[k]:bounds[k + 1]], profiles[k], rng=noise[k])
              .reshape(counts[k], size * size) for k in range(K))
    return ScanCohort(names=hospital_names(K), X=X,
                      y=tuple(np.split(y, bounds[1:-1])), profiles=profiles,
                      prevalence=tuple(float(p) for p in prev), image_size=size)


def pixel_names(image_size: int) -> tuple[str, ...]:
    """Feature names of flattened images, row-major: ``px_<row>_<col>``.

    >>> pixel_names(8)[:3], pixel_names(8)[-1]
    (('px_0_0', 'px_0_1', 'px_0_2'), 'px_7_7')
    """
    size = _check_int("image_size", image_size, 1)
    return tuple(f"px_{r}_{c}" for r in range(size) for c in range(size))


def as_images(X: Any, image_size: int | None = None) -> np.ndarray:
    """Rows of flattened pixels (n, image_size²) back to images (n, image_size, image_size).

    ``image_size = None`` takes the square root of the row length. Works on
    NumPy arrays and on anything ``np.asarray`` accepts (a torch tensor on CPU).

    >>> as_images(np.arange(8.0).reshape(2, 4)).tolist()
    [[[0.0, 1.0], [2.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]]]
    """
    X = np.asarray(X)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        _fail("X", f"array of shape {X.shape}", "must have shape (n, image_size²)")
    d = X.shape[1]
    if image_size is None:
        image_size = math.isqrt(d)
    image_size = _check_int("image_size", image_size, 1)
    if image_size * image_size != d:
        _fail("image_size", image_size, f"image_size² must equal the row length {d}")
    return X.reshape(X.shape[0], image_size, image_size)
