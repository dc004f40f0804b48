"""Files synthesis builds for assets (a job's bundled script, a packed source folder): written under
.build/<kind>/<hash of the content>/<name>, once per content, so an asset's hash, and the templates, change only
when what it holds does."""
from __future__ import annotations

import hashlib
from pathlib import Path

BUILD = Path(__file__).resolve().parents[2] / ".build"


def built_file(kind: str, name: str, body: bytes) -> Path:
    target = BUILD / kind / hashlib.sha256(body).hexdigest()[:16] / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(body)
        partial.replace(target)  # whole or absent, also when tests synthesize side by side
    return target
