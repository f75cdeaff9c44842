"""UCI Heart Disease: real patients from four hospitals (Janosi et al. 1988).

The four ``processed.*.data`` files of the UCI repository (CC BY 4.0) are not
shipped with fedlab. :func:`resolve_heart_dir` finds them, in this order:

1. the ``heart_dir`` argument (``config.data.heart_dir``);
2. the environment variable ``FEDLAB_HEART_DIR``;
3. the cache, ``$FEDLAB_CACHE/uci-heart-disease`` (default
   ``~/.cache/fedlab/uci-heart-disease``), if it already holds all four files;
4. otherwise it downloads them from UCI into the cache.

Every file is checked against the SHA-256 sums below before it is read. The
FLamby "Fed-Heart-Disease" preprocessing (du Terrail et al. 2022) is then
applied; see ``datasets/uci-heart-disease.md``.

>>> SITE_NAMES
('Cleveland', 'Hungary', 'Switzerland', 'Long Beach VA')
>>> FEATURES[-5:]
('cp_2', 'cp_3', 'cp_4', 'restecg_1', 'restecg_2')
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

__all__ = ["SITES", "SITE_NAMES", "FILES", "SHA256", "URL_TEMPLATE", "RAW_COLUMNS", "FEATURES",
           "FLAMBY_TEST_FRACTION", "ChecksumError", "HeartDataNotFound", "cache_dir",
           "resolve_heart_dir", "verify_checksums", "download", "read_site",
           "flamby_preprocess", "load_heart_sites"]

SITES = ("cleveland", "hungarian", "switzerland", "va")
SITE_NAMES = ("Cleveland", "Hungary", "Switzerland", "Long Beach VA")
FILES = tuple(f"processed.{s}.data" for s in SITES)
URL_TEMPLATE = ("https://archive.ics.uci.edu/ml/machine-learning-databases/heart-disease/"
                "processed.{site}.data")
# The files as published by UCI; datasets/uci-heart-disease.sha256 is the
# human-readable copy (a test keeps the two in agreement).
SHA256 = {
    "processed.cleveland.data": "a74b7efa387bc9d108d7d0115d831fe9b414b29ae7124f331b622b4efa0427c8",
    "processed.hungarian.data": "d1ad108f785768cd3d7e82dc522e6f5a61eea93cccfb3a46ee8076f73fc3d796",
    "processed.switzerland.data": "834a405ccf5b66ab4056bb77794adc8df0b7125186454c0a1d002d33c6c3b314",
    "processed.va.data": "e7c93d8d0d2acdadfa4c5e8de768e2191e7f618b952e29623f1f0d5949ff6b8f",
}
RAW_COLUMNS = ("age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang",
               "oldpeak", "slope", "ca", "thal", "num")
_KEPT = ("age", "sex", "trestbps", "chol", "fbs", "thalach", "exang", "oldpeak")
FEATURES = _KEPT + ("cp_2", "cp_3", "cp_4", "restecg_1", "restecg_2")
# FLamby's split: 66 % train / 34 % test within each hospital.
FLAMBY_TEST_FRACTION = 0.34
_CHUNK = 1 << 16


class ChecksumError(ValueError):
    """A data file's SHA-256 differs from the published one."""


class HeartDataNotFound(FileNotFoundError):
    """The four UCI files are neither on disk nor downloadable."""


def _manual_instructions() -> str:
    urls = "\n".join(f"  {URL_TEMPLATE.format(site=s)}" for s in SITES)
    return ("Download the 4 files by hand into one folder:\n" + urls +
            "\nthen pass heart_dir='that/folder' (config: data.heart_dir) "
            "or set the environment variable FEDLAB_HEART_DIR to it.")


def cache_dir() -> Path:
    """Where downloads go: ``$FEDLAB_CACHE/uci-heart-disease`` or ``~/.cache/fedlab/uci-heart-disease``.

    >>> cache_dir().name
    'uci-heart-disease'
    """
    root = os.environ.get("FEDLAB_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "fedlab"
    return base / "uci-heart-disease"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksums(folder: str | os.PathLike) -> None:
    """Raise :class:`ChecksumError` unless all four files match :data:`SHA256`.

    The message names the file, the expected and the actual hash: a changed
    file would silently change every number a course reports.
    """
    folder = Path(folder)
    for name in FILES:
        actual = _sha256(folder / name)
        if actual != SHA256[name]:
            raise ChecksumError(
                f"{folder / name}: SHA-256 mismatch — expected {SHA256[name]}, got {actual}. "
                "The file is corrupted or not the UCI original; delete it and download it again.")


def _missing(folder: Path) -> list[str]:
    return [name for name in FILES if not (folder / name).is_file()]


def download(folder: str | os.PathLike, *, timeout: float = 30.0) -> Path:
    """Fetch the missing UCI files into ``folder``, verifying each before it is written.

    A file is written to a temporary name and renamed only once its checksum
    matches, so an interrupted or corrupted download never looks complete.
    """
    folder = Path(folder)
    todo = _missing(folder)
    if not todo:
        return folder
    for name in todo:
        url = URL_TEMPLATE.format(site=name.split(".")[1])
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                payload = response.read()
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise HeartDataNotFound(
                f"could not download {url} ({err}); are you offline?\n" + _manual_instructions()
            ) from err
        actual = hashlib.sha256(payload).hexdigest()
        if actual != SHA256[name]:
            raise ChecksumError(f"{url}: SHA-256 mismatch — expected {SHA256[name]}, got {actual}. "
                                "Nothing was saved.\n" + _manual_instructions())
        # the folder is created only once there is verified data to put in it,
        # so an offline attempt leaves no trace
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise HeartDataNotFound(f"cannot create the folder {folder} ({err}).\n"
                                    + _manual_instructions()) from err
        tmp = folder / (name + ".part")
        tmp.write_bytes(payload)
        os.replace(tmp, folder / name)
    return folder


def resolve_heart_dir(heart_dir: str | os.PathLike | None = None, *, download_missing: bool = True,
                      timeout: float = 30.0) -> Path:
    """The folder holding the four verified UCI files (see the module docstring for the order).

    A folder named explicitly (argument or ``FEDLAB_HEART_DIR``) must hold all
    four files; fedlab never silently falls back to another copy.
    """
    for source, value in (("data.heart_dir", heart_dir),
                          ("FEDLAB_HEART_DIR", os.environ.get("FEDLAB_HEART_DIR") or None)):
        if value is None:
            continue
        folder = Path(value).expanduser()
        missing = _missing(folder)
        if missing:
            raise HeartDataNotFound(
                f"{source} = {str(value)!r}: the folder lacks {', '.join(missing)}.\n"
                + _manual_instructions())
        verify_checksums(folder)
        return folder
    folder = cache_dir()
    if _missing(folder):
        if not download_missing:
            raise HeartDataNotFound(f"the UCI heart files are not in the cache {folder}.\n"
                                    + _manual_instructions())
        download(folder, timeout=timeout)
    verify_checksums(folder)
    return folder


def read_site(path: str | os.PathLike) -> np.ndarray:
    """Parse one ``processed.*.data`` file into a float array ``(n, 14)``; ``?`` → ``NaN``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.data"
    >>> _ = p.write_text("63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\\n40,1,4,?,0,?,0,127,0,.7,?,?,?,2\\n")
    >>> a = read_site(p); a.shape, int(np.isnan(a).sum())
    ((2, 14), 5)
    """
    rows = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        cells = line.strip().split(",")
        if len(cells) != len(RAW_COLUMNS):
            raise ValueError(f"{path}, line {lineno}: {len(cells)} columns, "
                             f"expected {len(RAW_COLUMNS)}")
        rows.append([np.nan if c.strip() == "?" else float(c) for c in cells])
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(RAW_COLUMNS))


def flamby_preprocess(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FLamby's Fed-Heart-Disease preprocessing of one site's raw ``(n, 14)`` array.

    Drop ``slope``, ``ca``, ``thal`` (mostly missing outside Cleveland); drop
    rows that still have a missing value; one-hot encode ``cp`` (1–4) and
    ``restecg`` (0–2) dropping the first level; label ``y = 1[num > 0]``.
    The categories are fixed, not read from the data, so every hospital gets
    the same 13 columns (:data:`FEATURES`) even if one lacks a level.
    Unstandardised; du Terrail et al. (2022), "FLamby", NeurIPS Datasets & Benchmarks.

    >>> raw = np.array([[63, 1, 1, 145, 233, 1, 2, 150, 0, 2.3, 3, 0, 6, 0],
    ...                 [40, 1, 4, np.nan, 0, 0, 0, 127, 0, .7, np.nan, np.nan, np.nan, 2],
    ...                 [50, 0, 3, 120, 200, 0, 1, 140, 1, 1., np.nan, np.nan, np.nan, 3]])
    >>> X, y = flamby_preprocess(raw)
    >>> X.shape, y.tolist(), X[:, -5:].tolist()
    ((2, 13), [0, 1], [[0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0, 0.0]])
    """
    raw = np.asarray(raw, dtype=np.float64)
    col = {c: i for i, c in enumerate(RAW_COLUMNS)}
    keep = [col[c] for c in RAW_COLUMNS if c not in ("slope", "ca", "thal")]
    sub = raw[:, keep]
    sub = sub[~np.isnan(sub).any(axis=1)]
    sub_col = {c: i for i, c in enumerate(c for c in RAW_COLUMNS if c not in ("slope", "ca", "thal"))}
    cp, restecg = sub[:, sub_col["cp"]], sub[:, sub_col["restecg"]]
    onehot = np.column_stack([cp == 2, cp == 3, cp == 4, restecg == 1, restecg == 2]).astype(float)
    X = np.column_stack([sub[:, [sub_col[c] for c in _KEPT]], onehot])
    y = (sub[:, sub_col["num"]] > 0).astype(np.int64)
    return X, y


def load_heart_sites(heart_dir: str | os.PathLike | None = None, *, preprocessing: str = "flamby",
                     download_missing: bool = True,
                     ) -> tuple[list[tuple[np.ndarray, np.ndarray]], tuple[str, ...], tuple[str, ...]]:
    """Preprocessed, unstandardised ``(X, y)`` for each of the four sites, their names, feature names.

    Row counts after FLamby preprocessing: Cleveland 303, Hungary 261,
    Switzerland 46, Long Beach VA 130 (740 in all), as FLamby publishes.
    """
    if preprocessing != "flamby":
        raise ValueError(f"data.heart_preprocessing = {preprocessing!r} is not allowed: "
                         "choose one of flamby")
    folder = resolve_heart_dir(heart_dir, download_missing=download_missing)
    sites = [flamby_preprocess(read_site(folder / name)) for name in FILES]
    return sites, SITE_NAMES, FEATURES
