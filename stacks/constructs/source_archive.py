"""A job's source folder as the `sourcedir.tar.gz` SageMaker's training toolkit unpacks (script mode).

CDK uploads a folder asset as a .zip, which the toolkit cannot unpack; so the folder is packed here, byte for
byte the same for the same files (sorted entries, no timestamps, owners or modes of this machine), and shipped
as a file asset whose hash, and so the templates, change only when the source does."""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

BUILD = Path(__file__).resolve().parents[2] / ".build" / "sources"
SKIPPED = ("__pycache__", ".pyc", ".DS_Store")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part in SKIPPED or part.endswith(SKIPPED) for part in p.parts))


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
    body = pack(folder)
    target = BUILD / hashlib.sha256(body).hexdigest()[:16] / "sourcedir.tar.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(body)
        partial.replace(target)  # whole or absent, also when tests synthesize side by side
    return target
