"""A job's source folder as the `sourcedir.tar.gz` SageMaker's training toolkit unpacks (script mode).

CDK uploads a folder asset as a .zip, which the toolkit cannot unpack; so the folder is packed here, byte for
byte the same for the same files (sorted entries, no timestamps, owners or modes of this machine), and shipped
as a file asset whose hash, and so the templates, change only when the source does. A link in the folder is
packed as what it points to (training/sklearn_linear/contract -> ../../contract)."""
from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

from stacks.constructs.built_files import built_file

SKIPPED = ("__pycache__", ".pyc", ".DS_Store")


def _files(folder: Path) -> list[Path]:
    """The folder's files, through its links too (a source folder links the kit's contract/ package)."""
    found = [Path(top, name) for top, _, names in os.walk(folder, followlinks=True) for name in names]
    return sorted(p for p in found if not any(part in SKIPPED or part.endswith(SKIPPED) for part in p.parts))


def pack(folder: Path) -> bytes:
    """The folder's files as a gzipped tar, entries relative to the folder."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in _files(folder):
            body = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.size, info.mode = len(body), 0o644
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def source_archive(folder: Path) -> Path:
    """Where the folder's archive is written (once per content): <build>/<hash>/sourcedir.tar.gz."""
    if not folder.is_dir() or not _files(folder):
        raise FileNotFoundError(f"{folder} is not a folder of source files")
    return built_file("sources", "sourcedir.tar.gz", pack(folder))
