"""What the emulator answers for each AWS behaviour of stacks/aws_behaviours.py: the row's `offline` answer, or
one of its alternatives, chosen for one local account (LocalCloud(behaviours=...)) to rehearse a workflow under
what AWS might do instead."""
from __future__ import annotations

import threading
from typing import Mapping

from stacks.aws_behaviours import BEHAVIOURS

_CHOSEN: dict[str, str] = {}
_LOCK = threading.Lock()


def choose(chosen: Mapping[str, str]) -> None:
    """Answer these rows with these alternatives until `reset()`; a row or answer the table lacks is refused."""
    for key, answer in chosen.items():
        if key not in BEHAVIOURS:
            raise KeyError(f"{key!r} is not a row of stacks/aws_behaviours.py BEHAVIOURS")
        allowed = (BEHAVIOURS[key].offline, *BEHAVIOURS[key].alternatives)
        if answer not in allowed:
            raise ValueError(f"{key}: {answer!r} is not one of {', '.join(allowed)}")
    with _LOCK:
        _CHOSEN.clear()
        _CHOSEN.update(chosen)


def reset() -> None:
    with _LOCK:
        _CHOSEN.clear()


def answer(key: str) -> str:
    """How the emulator behaves for this row now."""
    with _LOCK:
        return _CHOSEN.get(key, BEHAVIOURS[key].offline)
