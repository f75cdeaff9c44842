"""Workshop presets: named experiments kept as TOML files in the repository's ``presets/`` folder.

A preset is an ``ExperimentConfig`` in the TOML format that ``fedlab config``
prints, with only the settings that differ from the defaults written out (and
a comment saying why). ``docs/instructor-guide.md`` says which workshop plan
uses which preset. From a terminal a preset is just a config file::

    fedlab run --config presets/workshop-90min.toml --out runs/90min

and in a notebook ``Dashboard(load_preset("workshop-90min"))`` opens the
dashboard on it. The files live next to the notebooks in a checkout of the
kit (they are not part of the installed package); ``load_preset`` also takes
the path of any TOML file.

>>> sorted(available_presets())
['workshop-90min', 'workshop-full-day', 'workshop-half-day']
>>> load_preset("workshop-90min").data.n_clients
5
"""

from __future__ import annotations

from pathlib import Path

from fedlab_core.config import ExperimentConfig

__all__ = ["PRESETS_DIR", "available_presets", "load_preset"]

# the repository's presets/ folder, beside fedlab_core/ in a checkout
PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


def available_presets(directory: str | Path | None = None) -> dict[str, Path]:
    """Every preset in ``directory`` (default ``PRESETS_DIR``): its name (the file stem) and path."""
    folder = Path(directory) if directory is not None else PRESETS_DIR
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.toml"))}


def load_preset(name: str | Path, *, directory: str | Path | None = None) -> ExperimentConfig:
    """The ``ExperimentConfig`` of a preset, validated: by name (``"workshop-90min"``) or by path.

    A name is looked up in ``directory`` (default: the repository's
    ``presets/``); anything ending in ``.toml`` is read as a path. A bad
    value in the file raises ``ValueError`` naming the file, the field, the
    value and what is allowed, as ``fedlab run --config`` does.
    """
    as_path = Path(name)
    if as_path.suffix == ".toml":
        path = as_path
        if not path.is_file():
            raise ValueError(f"preset = {str(name)!r} is not allowed: no such file")
    else:
        presets = available_presets(directory)
        if str(name) not in presets:
            folder = Path(directory) if directory is not None else PRESETS_DIR
            known = ", ".join(presets) or f"none: {folder} has no .toml files (presets ship with a " \
                                            "checkout of the kit, not with the installed package)"
            raise ValueError(f"preset = {str(name)!r} is not allowed: choose one of {known}")
        path = presets[str(name)]
    try:
        return ExperimentConfig.from_toml(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
