"""The library versions inside the framework images, and the environment each image's jobs run in offline:
`make` builds one virtual environment per image repository with the image's versions (pinned here, printed by
`python -m offline.image_versions --requirements <repository>`), and a run says what still differs from the
image. Standard library only: the Makefile runs it before any environment exists."""
from __future__ import annotations

import argparse
import re
import threading
from importlib import metadata
from pathlib import Path
from typing import Callable

# Image repository -> library -> the version the kit's image tag installs (see the sources named per image).
IMAGE_LIBRARIES: dict[str, dict[str, str]] = {
    # sagemaker-scikit-learn:1.2-1-cpu-py3: aws/sagemaker-scikit-learn-container, branch 1.2-1 (b440c40),
    # docker/1.2-1/base/Dockerfile.cpu (Python 3.9, scikit-learn 1.2.1) and requirements.txt.
    "sagemaker-scikit-learn": {"python": "3.9", "scikit-learn": "1.2.1", "numpy": "1.24.1", "pandas": "1.1.3",
                               "scipy": "1.8.0", "sagemaker-inference": "1.2.0"},
    # sagemaker-xgboost:1.7-1: aws/sagemaker-xgboost-container, branch 1.7-1 (f7a93a2),
    # docker/1.7-1/base/Dockerfile.cpu (XGBOOST_VERSION 1.7.4, Python 3.9) and requirements.txt.
    "sagemaker-xgboost": {"python": "3.9", "xgboost": "1.7.4", "numpy": "1.24.1", "pandas": "1.2.4",
                          "scipy": "1.8.0", "scikit-learn": "0.24.1", "sagemaker-inference": "1.5.5"},
}
# The environments are built with Python 3.11 (the kit's). Where an image's release has no wheel for it, the
# environment takes the oldest release that has one (PyPI's files, read 2026-12-07): the first with cp311 wheels.
OLDEST_WITH_A_WHEEL = {"scikit-learn": "1.1.3", "pandas": "1.5.0", "scipy": "1.9.2"}
SOURCE_ONLY = {"sagemaker-inference"}  # released on PyPI as source only (pure Python); every other library: wheels
DISTRIBUTIONS = {"xgboost": ("xgboost", "xgboost-cpu")}  # library -> distributions that provide it
ROOT = Path(__file__).resolve().parents[1]  # the environments live beside .venv, in the kit's folder
MAKE_TARGET = "make image-envs"  # builds every image's environment (the Makefile's $(STAMPS)/image-<repository>)
_REPORTED: set[str] = set()
_LOCK = threading.Lock()


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def requirements(repository: str) -> list[str]:
    """`name==version` per library of the image (Python aside): the image's version, or the oldest with a wheel
    for this Python where the image's is older."""
    pins = []
    for library, image in IMAGE_LIBRARIES[repository].items():
        if library == "python":
            continue
        oldest = OLDEST_WITH_A_WHEEL.get(library, image)
        pins.append(f"{library}=={max(image, oldest, key=_release)}")
    return pins


def environment(repository: str) -> Path:
    return ROOT / f".venv-image-{repository}"


def missing_environment(repository: str) -> str | None:
    """The one line that refuses an image's jobs when its environment is not built, else None."""
    if (environment(repository) / "bin" / "python").exists():
        return None
    return (f"offline, {repository} jobs run in {environment(repository).name} (the image's library versions), "
            f"which is missing; run `{MAKE_TARGET}`")


def image_python(repository: str) -> str:
    """The Python of the image's environment; a missing one refuses the job (never the kit's own Python)."""
    missing = missing_environment(repository)
    if missing:
        raise RuntimeError(f"ClientError: {missing}")
    return str(environment(repository) / "bin" / "python")


def environment_versions(repository: str) -> dict[str, str]:
    """library -> version installed in the image's environment ("python" from its pyvenv.cfg)."""
    folder = environment(repository)
    found = {}
    config = folder / "pyvenv.cfg"
    if config.is_file():
        match = re.search(r"^version(?:_info)?\s*=\s*(\S+)", config.read_text(), re.MULTILINE)
        if match:
            found["python"] = match.group(1)
    installed = {(d.metadata["Name"] or "").lower().replace("_", "-"): d.version
                 for d in metadata.distributions(path=[str(p) for p in folder.glob("lib/python*/site-packages")])}
    for library in IMAGE_LIBRARIES.get(repository, {}):
        for distribution in DISTRIBUTIONS.get(library, (library,)):
            if distribution in installed:
                found[library] = installed[distribution]
                break
    return found


def _distance(image: str, here: str) -> str:
    """How far apart two versions are, in the largest part that differs ("2 minor versions newer")."""
    for label, a, b in zip(("major", "minor", "patch"), _release(image), _release(here)):
        if a != b:
            return f"{abs(b - a)} {label} version{'s' if abs(b - a) > 1 else ''} {'newer' if b > a else 'older'}"
    return "the same release"


def differences(repository: str) -> list[str]:
    """'pandas 1.5.0 here, 1.1.3 in the image (4 minor versions newer)' for each library whose version in the
    image's environment is not the image's."""
    here_versions = environment_versions(repository)
    found = []
    for library, image in IMAGE_LIBRARIES.get(repository, {}).items():
        here = here_versions.get(library)
        if here is None:
            found.append(f"{library} missing here, {image} in the image")
        elif here != image and not here.startswith(f"{image}."):
            found.append(f"{library} {here} here, {image} in the image ({_distance(image, here)})")
    return found


def report_versions(repository: str, say: Callable[[str], None]) -> None:
    """Say once per process, for an image's first job, which of its libraries still differ here."""
    with _LOCK:
        if repository in _REPORTED:
            return
        _REPORTED.add(repository)
    found = differences(repository)
    if found:
        say(f"offline, {repository} jobs run in {environment(repository).name}, which differs from the image: "
            f"{'; '.join(found)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", metavar="REPOSITORY", choices=sorted(IMAGE_LIBRARIES),
                        help="print the requirements file of the image's environment")
    parser.add_argument("--repositories", action="store_true", help="print the image repositories, one a line")
    arguments = parser.parse_args()
    if arguments.repositories:
        print("\n".join(IMAGE_LIBRARIES))
    if arguments.requirements:
        print(f"# Generated by python -m offline.image_versions --requirements {arguments.requirements}; "
              "edit IMAGE_LIBRARIES there.")
        # Wheels only for the compiled libraries: on a Python they have no wheel for, pip fails at once
        # instead of compiling (numpy 1.24.1 has wheels for CPython 3.8 to 3.11).
        wheels = [library for library in IMAGE_LIBRARIES[arguments.requirements]
                  if library != "python" and library not in SOURCE_ONLY]
        print(f"--only-binary {','.join(wheels)}")
        print("\n".join(requirements(arguments.requirements)))


if __name__ == "__main__":
    main()
