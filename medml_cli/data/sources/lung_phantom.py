"""The built-in, offline default for lung CT: a deterministic SYNTHETIC chest-CT nodule
phantom (these are NOT patient data), and the ``lung-phantom`` data source that serves it.

Every run made from it is labelled synthetic in metrics.json, report.md and the CLI output.

Every image made here is drawn from random numbers: no scan, patient or annotation was used.
It exists so that a 3-D CNN pipeline can be built, tested and demonstrated offline, with a
task that is hard for a linear model on raw voxels and easy for a model that sees 3-D shape.

What a patch (1 mm isotropic voxels, Hounsfield units, axes z, y, x) contains:

- lung parenchyma around -850 HU with a smooth low-frequency texture (a few random plane
  waves), offset per patient;
- vessels: straight tubes of radius 0.6-2 voxels and -40..+60 HU running in random
  directions; seen along a plane they are lines, across it they are small bright discs;
- on about a quarter of the patches a chest wall: a fat layer (-100 HU) and muscle / soft
  tissue (+40 HU) beyond a plane near one edge;
- Gaussian noise, slightly correlated in-plane like CT noise, with a standard deviation of
  30-60 HU fixed per patient ("scanner"), plus a per-patient calibration offset;
- positives: one nodule of radius 2-6 voxels near (not always at) the centre, either round,
  lobulated, spiculated, or part-solid / pure ground-glass (about -500 HU around a solid
  core); its solid part is -100..+100 HU;
- negatives: confounders instead, thick vessels (radius 1.5-3.5) crossing near the centre,
  often two of them crossing, so that the centre is locally as bright as a nodule. Many
  nodules also touch a thick vessel, as real ones do.

The label is therefore carried by 3-D compactness (a blob versus tubes that run on through
the patch), which a logistic regression on voxels captures poorly and a 3-D CNN captures
well. Measured with 60 patients x 8 patches, 32^3, a 25% patient-grouped test split
(GroupShuffleSplit, random_state 0) and ``LogisticRegression(C=0.01)`` on [-1000, 400]-
windowed voxels: AUROC 0.70 / 0.68 (phantom seeds 0 / 1) at ``difficulty="default"``, where
a 3-D CNN (cnn3d, filters 16/32/64, 30-40 epochs) reached 0.96-0.975 on the same split;
about 0.66-0.78 at "hard" (smaller nodules, thicker confounders, more vessel attachments;
the CNN plateaued near 0.90), and about 0.95 at "easy" (large nodules, few confounders: a
sanity check that any model should pass).

The same arguments always give byte-identical arrays on one platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from medml_cli.data.formats.types import PatchSet
from medml_cli.data.image_base import HU_WINDOW_FIELD, ImageDataset, hu_intensity
from medml_cli.registry import DATASETS
from medml_cli.schemas import Provenance, StrictModel

#: These are synthetic data; reports and model cards should say so.
SYNTHETIC = True

DIFFICULTIES = ("easy", "default", "hard")
LUNG_HU = -850.0

#: Voxel coordinates (z, y, x) relative to the centre, shaped to broadcast over a chunk.
Grid = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Knobs:
    """What ``difficulty`` changes: how much negatives look like positives."""

    radius_range: tuple[float, float]  # nodule radius (voxels)
    centre_jitter: float  # max nodule / confounder offset from the centre (voxels)
    p_confounder: float  # chance a negative has a thick vessel through the centre
    p_crossing: float  # chance such a negative has a second one crossing it
    p_attached: float  # chance a nodule touches a thick vessel
    confounder_radius: tuple[float, float]


_KNOBS = {
    "easy": _Knobs((3.0, 6.0), 2.0, 0.5, 0.3, 0.2, (1.2, 2.5)),
    # Nodules and confounders wander up to 6 voxels from the centre, which defeats a linear
    # model on fixed voxel positions, while a CNN's shared filters find the blob anywhere.
    "default": _Knobs((3.0, 6.0), 6.0, 0.95, 0.6, 0.4, (1.2, 2.5)),
    "hard": _Knobs((2.0, 6.0), 3.0, 0.95, 0.5, 0.7, (1.5, 3.5)),
}

_N_VESSELS = 6  # background vessel slots per patch (each present with probability 0.7)
_N_LOBES = 3
_N_SPIKES = 6
_N_WAVES = 3
_CHUNK = 64  # patches generated together; fixed so the random stream never depends on it


def _unit_vectors(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    v = rng.standard_normal((*shape, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random rotation matrices (QR of Gaussian matrices, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    return q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]


def _ramp(radius: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Partial-volume edge: 1 inside, 0 outside, linear over one voxel at the surface."""
    return np.clip(radius + 0.5 - distance, 0.0, 1.0)


def _blend(image: np.ndarray, alpha: np.ndarray, value: np.ndarray) -> None:
    image += alpha * (value - image)


def _b(values: np.ndarray) -> np.ndarray:
    """Per-patch values shaped to broadcast over (patch, z, y, x)."""
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1, 1)


def _draw_parameters(
    rng: np.random.Generator,
    labels: np.ndarray,
    patient: np.ndarray,
    n_patients: int,
    knobs: _Knobs,
    dim: int,
    size: int,
) -> dict[str, np.ndarray]:
    """Every random choice except the noise, drawn up front in a fixed order."""
    n = len(labels)
    half = size / 2.0
    p: dict[str, np.ndarray] = {}
    # Patient ("scanner") level.
    p["noise_sd"] = rng.uniform(30.0, 60.0, n_patients)[patient]
    p["offset"] = rng.uniform(-25.0, 25.0, n_patients)[patient]
    p["lung"] = LUNG_HU + rng.uniform(-30.0, 30.0, n_patients)[patient]
    # Texture: plane waves with wavelengths of 12-40 voxels, amplitude 8-20 HU.
    p["wave_k"] = _unit_vectors(rng, (n, _N_WAVES)) * (
        2 * np.pi / rng.uniform(12.0, 40.0, (n, _N_WAVES, 1))
    )
    p["wave_phase"] = rng.uniform(0, 2 * np.pi, (n, _N_WAVES))
    p["wave_amp"] = rng.uniform(8.0, 20.0, (n, _N_WAVES))
    # Background vessels: a point in the patch, a direction, a radius, a density.
    p["ves_point"] = rng.uniform(-half, half, (n, _N_VESSELS, 3))
    if dim == 2:
        p["ves_point"][..., 0] = rng.uniform(-3.0, 3.0, (n, _N_VESSELS))
    p["ves_dir"] = _unit_vectors(rng, (n, _N_VESSELS))
    p["ves_radius"] = np.where(
        rng.random((n, _N_VESSELS)) < 0.7, rng.uniform(0.6, 2.0, (n, _N_VESSELS)), -2.0
    )
    p["ves_hu"] = rng.uniform(-40.0, 60.0, (n, _N_VESSELS))
    positive = labels == 1
    # Nodules (drawn for every patch so the stream is label-independent; used for positives).
    lo, hi = knobs.radius_range
    p["nod_radius"] = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    p["nod_axes"] = rng.uniform(0.8, 1.25, (n, 3))
    p["nod_rot"] = _rotations(rng, n)
    p["nod_centre"] = rng.uniform(-knobs.centre_jitter, knobs.centre_jitter, (n, 3))
    if dim == 2:
        # Keep the axial slice well inside the nodule so it is visible in 2-D.
        p["nod_centre"][:, 0] = rng.uniform(-0.3, 0.3, n) * p["nod_radius"]
    p["nod_hu"] = rng.uniform(-100.0, 100.0, n)
    # 0 round, 1 lobulated, 2 spiculated, 3 part-solid or pure ground glass.
    p["nod_kind"] = rng.choice(4, size=n, p=[0.4, 0.25, 0.2, 0.15])
    p["lobe_dir"] = _unit_vectors(rng, (n, _N_LOBES))
    p["lobe_scale"] = rng.uniform(0.45, 0.7, (n, _N_LOBES))
    p["spike_dir"] = _unit_vectors(rng, (n, _N_SPIKES))
    p["spike_len"] = rng.uniform(2.0, 5.0, (n, _N_SPIKES))
    p["spike_radius"] = rng.uniform(0.35, 0.7, (n, _N_SPIKES))
    # Thick vessels through the centre: confounders for negatives, attachments for nodules.
    has_thick = np.where(
        positive, rng.random(n) < knobs.p_attached, rng.random(n) < knobs.p_confounder
    )
    has_second = has_thick & ~positive & (rng.random(n) < knobs.p_crossing)
    p["thick_centre"] = rng.uniform(-knobs.centre_jitter, knobs.centre_jitter, (n, 3))
    p["thick_shift"] = _unit_vectors(rng, (n, 2)) * rng.uniform(0.0, 1.5, (n, 2, 1))
    # A vessel feeding a nodule passes through its edge.
    p["thick_centre"][positive] = p["nod_centre"][positive]
    p["thick_shift"][positive] *= (p["nod_radius"][positive] / 1.5)[:, None, None]
    # Half of them run close to z, so on an axial slice they are discs, like a nodule.
    directions = _unit_vectors(rng, (n, 2))
    along_z = rng.random((n, 2)) < 0.5
    tilt = directions * rng.uniform(0.0, 0.5, (n, 2, 1))
    tilt[..., 0] = 1.0
    tilt /= np.linalg.norm(tilt, axis=-1, keepdims=True)
    p["thick_dir"] = np.where(along_z[..., None], tilt, directions)
    radius = rng.uniform(*knobs.confounder_radius, (n, 2))
    radius[:, 0] = np.where(has_thick, radius[:, 0], -2.0)
    radius[:, 1] = np.where(has_second, radius[:, 1], -2.0)
    # An attached vessel is thinner than the nodule it feeds.
    radius[positive, 0] = np.where(has_thick[positive], radius[positive, 0] * 0.8, -2.0)
    p["thick_radius"] = radius
    p["thick_hu"] = rng.uniform(-60.0, 80.0, (n, 2))
    p["ggo_hu"] = rng.uniform(-600.0, -450.0, n)
    p["core_scale"] = np.where(rng.random(n) < 0.3, -1.0, rng.uniform(0.3, 0.6, n))
    # Chest wall on ~25% of patches: a plane 9-14 voxels from the centre, mostly in-plane.
    p["wall_on"] = rng.random(n) < 0.25
    normal = _unit_vectors(rng, (n,))
    normal[:, 0] *= 0.3
    p["wall_normal"] = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
    p["wall_dist"] = rng.uniform(9.0, 14.0, n) * size / 32.0
    p["fat_width"] = rng.uniform(1.0, 3.0, n)
    p["wall_hu"] = rng.uniform(25.0, 55.0, n)
    return p


def _line_distance(grid: Grid, point: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Distance of every voxel to an infinite line; point/direction are (B, 3)."""
    z, y, x = grid
    dz, dy, dx = z - _b(point[:, 0]), y - _b(point[:, 1]), x - _b(point[:, 2])
    along = dz * _b(direction[:, 0]) + dy * _b(direction[:, 1]) + dx * _b(direction[:, 2])
    return np.sqrt(np.maximum(dz * dz + dy * dy + dx * dx - along * along, 0.0))


def _render_chunk(
    p: dict[str, np.ndarray], sl: slice, labels: np.ndarray, grid: Grid, noise: np.ndarray
) -> np.ndarray:
    z, y, x = grid
    b = sl.stop - sl.start
    shape = (b, z.shape[1], y.shape[2], x.shape[3])
    q = {k: v[sl] for k, v in p.items()}
    image = np.empty(shape, dtype=np.float32)
    image[...] = _b(q["lung"])

    # Parenchymal texture.
    for w in range(_N_WAVES):
        k = q["wave_k"][:, w]
        phase = _b(k[:, 0]) * z + _b(k[:, 1]) * y + _b(k[:, 2]) * x + _b(q["wave_phase"][:, w])
        image += _b(q["wave_amp"][:, w]) * np.cos(phase)

    # Background vessels.
    for v in range(_N_VESSELS):
        dist = _line_distance(grid, q["ves_point"][:, v], q["ves_dir"][:, v])
        _blend(image, _ramp(_b(q["ves_radius"][:, v]), dist), _b(q["ves_hu"][:, v]))

    # Thick vessels through the centre (confounders / nodule attachments).
    for v in range(2):
        on = np.flatnonzero(q["thick_radius"][:, v] > 0)
        if on.size:
            point = q["thick_centre"][on] + q["thick_shift"][on, v]
            dist = _line_distance(grid, point, q["thick_dir"][on, v])
            alpha = _ramp(_b(q["thick_radius"][on, v]), dist)
            image[on] += alpha * (_b(q["thick_hu"][on, v]) - image[on])

    # Nodules, computed only for the positive patches of this chunk.
    pos = np.flatnonzero(labels[sl] == 1)
    if pos.size:
        image[pos] = _render_nodules({k: v[pos] for k, v in q.items()}, image[pos], grid)

    # Chest wall: fat layer then muscle beyond a plane.
    wall = np.flatnonzero(q["wall_on"])
    if wall.size:
        n = q["wall_normal"][wall]
        s = _b(n[:, 0]) * z + _b(n[:, 1]) * y + _b(n[:, 2]) * x
        d = _b(q["wall_dist"][wall])
        part = image[wall]
        _blend(part, np.clip(s - d + _b(q["fat_width"][wall]) + 0.5, 0, 1), np.float32(-100.0))
        _blend(part, np.clip(s - d + 0.5, 0, 1), _b(q["wall_hu"][wall]))
        image[wall] = part

    image += _b(q["offset"])
    image += noise * _b(q["noise_sd"])
    return image


def _render_nodules(q: dict[str, np.ndarray], image: np.ndarray, grid: Grid) -> np.ndarray:
    z, y, x = grid
    c = q["nod_centre"]
    dz, dy, dx = z - _b(c[:, 0]), y - _b(c[:, 1]), x - _b(c[:, 2])
    rot = q["nod_rot"]
    radius = _b(q["nod_radius"])
    # Ellipsoid: rotate the offsets, scale each axis, measure in units of the radius.
    d2 = 0.0
    for a in range(3):
        u = _b(rot[:, 0, a]) * dz + _b(rot[:, 1, a]) * dy + _b(rot[:, 2, a]) * dx
        d2 = d2 + (u / _b(q["nod_axes"][:, a])) ** 2
    alpha = _ramp(radius, np.sqrt(d2))
    dist_centre = np.sqrt(dz * dz + dy * dy + dx * dx)

    kind = q["nod_kind"]
    lobulated = np.flatnonzero(kind == 1)
    if lobulated.size:
        r = radius[lobulated]
        for lobe in range(_N_LOBES):
            offset = q["lobe_dir"][lobulated, lobe] * (0.65 * q["nod_radius"][lobulated, None])
            ldz = dz[lobulated] - _b(offset[:, 0])
            ldy = dy[lobulated] - _b(offset[:, 1])
            ldx = dx[lobulated] - _b(offset[:, 2])
            lobe_r = r * _b(q["lobe_scale"][lobulated, lobe])
            lobe_alpha = _ramp(lobe_r, np.sqrt(ldz * ldz + ldy * ldy + ldx * ldx))
            alpha[lobulated] = np.maximum(alpha[lobulated], lobe_alpha)

    spiculated = np.flatnonzero(kind == 2)
    if spiculated.size:
        sdz, sdy, sdx = dz[spiculated], dy[spiculated], dx[spiculated]
        r2 = sdz * sdz + sdy * sdy + sdx * sdx
        length = q["nod_radius"][spiculated, None] + q["spike_len"][spiculated]
        for spike in range(_N_SPIKES):
            u = q["spike_dir"][spiculated, spike]
            along = sdz * _b(u[:, 0]) + sdy * _b(u[:, 1]) + sdx * _b(u[:, 2])
            t = np.clip(along, 0.0, _b(length[:, spike]))
            dist = np.sqrt(np.maximum(r2 - 2 * t * along + t * t, 0.0))
            spike_alpha = _ramp(_b(q["spike_radius"][spiculated, spike]), dist)
            alpha[spiculated] = np.maximum(alpha[spiculated], spike_alpha)

    value = np.broadcast_to(_b(q["nod_hu"]), alpha.shape).copy()
    ground_glass = np.flatnonzero(kind == 3)
    if ground_glass.size:
        # Ground-glass everywhere in the nodule, a solid core (if any) in the middle.
        core = _ramp(
            radius[ground_glass] * _b(q["core_scale"][ground_glass]), dist_centre[ground_glass]
        )
        ggo = _b(q["ggo_hu"][ground_glass])
        value[ground_glass] = ggo + core * (_b(q["nod_hu"][ground_glass]) - ggo)
    _blend(image, alpha, value)
    return image


def _correlated_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Unit-variance Gaussian noise smoothed in-plane with a [1, 2, 1]/4 kernel (CT-like)."""
    white = rng.standard_normal(shape, dtype=np.float32)
    smooth = 0.5 * white
    smooth += 0.25 * (np.roll(white, 1, axis=-1) + np.roll(white, -1, axis=-1))
    out = 0.5 * smooth
    out += 0.25 * (np.roll(smooth, 1, axis=-2) + np.roll(smooth, -1, axis=-2))
    # Each 1-D pass keeps a variance fraction of 0.25^2 + 0.5^2 + 0.25^2 = 0.375.
    out /= np.float32(0.375)
    return out


def make_lung_phantom(
    n_patients: int = 60,
    samples_per_patient: int = 8,
    dim: int = 3,
    size: int = 32,
    positive_fraction: float = 0.5,
    seed: int = 0,
    difficulty: str = "default",
) -> PatchSet:
    """SYNTHETIC nodule / no-nodule CT patches in HU (see the module docstring).

    ``dim=3`` gives images (N, size, size, size) in (z, y, x); ``dim=2`` gives the axial
    slice through the centre, (N, size, size). N = n_patients * samples_per_patient, of which
    round(N * positive_fraction) are positive, spread at random over patients. ``groups``
    are patient ids ("phantom-007"); ``ids`` are "phantom-007-s03". ``difficulty`` is
    "easy", "default" or "hard".
    """
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    if difficulty not in _KNOBS:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    if n_patients < 1 or samples_per_patient < 1:
        raise ValueError("n_patients and samples_per_patient must be at least 1")
    if size < 8:
        raise ValueError(f"size must be at least 8 voxels, got {size}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")

    knobs = _KNOBS[difficulty]
    rng = np.random.default_rng(np.random.SeedSequence([seed, dim, size]))
    n = n_patients * samples_per_patient
    patient = np.repeat(np.arange(n_patients), samples_per_patient)
    labels = np.zeros(n, dtype=np.int64)
    labels[: int(round(n * positive_fraction))] = 1
    labels = rng.permutation(labels)
    params = _draw_parameters(rng, labels, patient, n_patients, knobs, dim, size)

    # Voxel coordinates relative to the centre voxel (index size // 2).
    axis = np.arange(size, dtype=np.float32) - size // 2
    z_axis = axis if dim == 3 else np.zeros(1, dtype=np.float32)
    grid = (z_axis.reshape(1, -1, 1, 1), axis.reshape(1, 1, -1, 1), axis.reshape(1, 1, 1, -1))
    nz = len(z_axis)

    images = np.empty((n, nz, size, size), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        noise = _correlated_noise(rng, (sl.stop - sl.start, nz, size, size))
        images[sl] = _render_chunk(params, sl, labels, grid, noise)
    if dim == 2:
        images = images[:, 0]

    groups = np.array([f"phantom-{p:03d}" for p in patient])
    ids = np.array(
        [f"phantom-{p:03d}-s{i % samples_per_patient:02d}" for i, p in enumerate(patient)]
    )
    return PatchSet(images=images, labels=labels, groups=groups, ids=ids)


class LungPhantomData(StrictModel):
    """Generated chest-CT-like patches (3D) or axial slices (2D) in HU, with and without
    nodules. Deterministic by `seed`. SYNTHETIC: for demos and tests, not for clinical claims."""

    type: Literal["lung-phantom"]
    dim: Literal[2, 3] = Field(3, description="3: volumetric patches; 2: axial slices.")
    size: int = Field(32, ge=8, le=128, description="Edge length of each patch in voxels.")
    n_patients: int = Field(60, ge=4, le=10_000, description="Synthetic patients.")
    samples_per_patient: int = Field(8, ge=1, le=1000, description="Patches per patient.")
    positive_fraction: float = Field(0.5, gt=0, lt=1, description="Share with a nodule.")
    difficulty: Literal["easy", "default", "hard"] = Field("default",
                                                           description="How subtle nodules are.")
    seed: int = Field(0, ge=0, description="Seed of the generator (separate from the "
                                           "experiment seed, so the data stay fixed).")
    hu_window: list[float] = HU_WINDOW_FIELD


@DATASETS.register(
    "lung-phantom",
    config=LungPhantomData,
    summary="SYNTHETIC chest-CT nodule phantom, 2D slices or 3D patches (offline default)",
    tags={"image", "binary-classification"},
)
def load_lung_phantom(cfg: LungPhantomData, *, problem: str) -> ImageDataset:

    """Generate the synthetic lung-nodule phantom patches."""
    patches = make_lung_phantom(
        n_patients=cfg.n_patients, samples_per_patient=cfg.samples_per_patient, dim=cfg.dim,
        size=cfg.size, positive_fraction=cfg.positive_fraction, seed=cfg.seed,
        difficulty=cfg.difficulty,
    )
    provenance = Provenance(
        source=f"medml lung-phantom generator (SYNTHETIC), dim={cfg.dim}, size={cfg.size}, "
        f"{cfg.n_patients} patients x {cfg.samples_per_patient}, seed={cfg.seed}",
        licence="generated by medml (MIT)",
        files={"generator-parameters": _parameter_digest(cfg)},
        synthetic=True,
    )
    return ImageDataset(
        images=patches.images, labels=np.asarray(patches.labels, dtype=int),
        ids=np.asarray(patches.ids).astype(str), groups=np.asarray(patches.groups).astype(str),
        provenance=provenance, intensity=hu_intensity(cfg.hu_window), spatial_dims=cfg.dim,
        class_names=("no nodule", "nodule"),
    ).check("lung-phantom")


def _parameter_digest(cfg: LungPhantomData) -> str:
    """A stand-in for a file hash: the phantom is a pure function of these parameters."""
    import hashlib

    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()
