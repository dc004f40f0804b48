"""Times as the kit's inputs and AWS's records give them: ISO 8601 with a time zone. Standard library only."""
from __future__ import annotations

import datetime
from typing import Any


def utc_time(text: Any, name: str) -> datetime.datetime:
    """`text` as a UTC time; refuses, naming `name`, what is not an ISO 8601 time with its time zone."""
    try:
        moment = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time such as 2026-01-31T14:00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name} must name its time zone (Z for UTC), got {text!r}")
    return moment.astimezone(datetime.UTC)
