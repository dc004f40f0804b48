"""The library versions inside the framework images, against the ones a job runs with here: offline, a job's
script runs with this machine's Python packages, so the run says where they differ and by how much."""
from __future__ import annotations

import platform
import threading
from importlib import metadata
from typing import Callable

from stacks.settings.image_table import IMAGE_TABLE

# Image repository -> library -> the version the kit's image tag installs (stacks/settings/image_table.py names the
# sources per image).
IMAGE_LIBRARIES: dict[str, dict[str, str]] = {row.repository: dict(row.libraries) for row in IMAGE_TABLE}
DISTRIBUTIONS = {"xgboost": ("xgboost", "xgboost-cpu")}  # library -> distributions that provide it here
_REPORTED: set[str] = set()
_LOCK = threading.Lock()


def local_version(library: str) -> str | None:
    if library == "python":
        return platform.python_version()
    for distribution in DISTRIBUTIONS.get(library, (library,)):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def _distance(image: str, here: str) -> str:
    """How far apart two versions are, in the largest part that differs ("2 minor versions newer")."""
    parts = lambda v: [int(p) for p in v.split(".")[:3] if p.isdigit()]  # noqa: E731
    for label, a, b in zip(("major", "minor", "patch"), parts(image), parts(here)):
        if a != b:
            return f"{abs(b - a)} {label} version{'s' if abs(b - a) > 1 else ''} {'newer' if b > a else 'older'}"
    return "the same release"


def differences(repository: str, version_of: Callable[[str], str | None] = local_version) -> list[str]:
    """'scikit-learn 1.9.1 here, 1.2.1 in the image (7 minor versions newer)' for each library that differs;
    `version_of` gives a library's version where the job runs (this process's, by default)."""
    found = []
    for library, image in IMAGE_LIBRARIES.get(repository, {}).items():
        here = version_of(library)
        if here is None:
            found.append(f"{library} missing here, {image} in the image")
        elif not here.startswith(image):
            found.append(f"{library} {here} here, {image} in the image ({_distance(image, here)})")
    return found


def report_versions(repository: str, say: Callable[[str], None],
                    version_of: Callable[[str], str | None] = local_version) -> None:
    """Say once per process, for an image's first job, which of its libraries differ here."""
    with _LOCK:
        if repository in _REPORTED:
            return
        _REPORTED.add(repository)
    found = differences(repository, version_of)
    if found:
        say(f"offline, {repository} jobs run with this machine's libraries: {'; '.join(found)}")
