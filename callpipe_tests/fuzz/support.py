"""Shared pieces of the fuzz suite: hypothesis settings, hostile strings, filesystem snapshots.

Profiles (``CALLPIPE_FUZZ_PROFILE``): ``ci`` (default) is derandomized, so every run tries the
same inputs and a red build is reproducible; ``explore`` draws fresh random inputs and tries
``CALLPIPE_FUZZ_SCALE`` (default 10) times as many, for hunting bugs by hand. Both keep the
explicit ``@example`` regressions, which fail if a fixed bug comes back.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE = os.environ.get("CALLPIPE_FUZZ_PROFILE", "ci")
SCALE = int(os.environ.get("CALLPIPE_FUZZ_SCALE", "10")) if PROFILE == "explore" else 1

settings.register_profile(
    "callpipe-fuzz-ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "callpipe-fuzz-explore",
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

COUNTS: Counter[str] = Counter()
"""Inputs tried per fuzz target in this session (printed in the terminal summary)."""


def fuzz(max_examples: int) -> settings:
    """Settings for one fuzz test: the active profile with ``max_examples`` (times the scale)."""
    return settings(settings.get_profile(f"callpipe-fuzz-{PROFILE}"), max_examples=max_examples * SCALE)


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` after checking it is a clear one-liner (non-empty, no newline, short)."""
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} without a message"
    assert "\n" not in message, f"{type(exc).__name__} message spans lines: {message!r}"
    assert len(message) <= 600, f"{type(exc).__name__} message is {len(message)} characters long"
    return message


PARENT = "{PARENT}"
"""Placeholder in generated strings for the absolute path of the test's temp directory."""

HOSTILE_FRAGMENTS = (
    "..",
    ".",
    "/",
    "\\",
    "../",
    "..\\",
    "/etc/passwd",
    f"{PARENT}/escaped",
    f"{PARENT}/../x",
    "~",
    "\x00",
    "\n",
    "\r",
    "\t",
    " ",
    "CON",
    "NUL",
    "COM1",
    "aux.txt",
    "LPT1",
    "a",
    "Z",
    "0",
    "rec-1",
    ".hidden",
    "-",
    "_",
    "%2e%2e",
    "%00",
    "é",
    "ａ",
    "\u202e",
    "\ufeff",
    "𝔘",
    "日本",
    "😀",
    ":",
    "*",
    "?",
    '"',
    "<",
    ">",
    "|",
    "s3://bucket/key",
    "index/by-id/x",
    "a" * 127,
    "b" * 300,
)

hostile_ids = st.one_of(
    st.sampled_from(HOSTILE_FRAGMENTS),
    st.lists(st.sampled_from(HOSTILE_FRAGMENTS), min_size=1, max_size=6).map("".join),
    st.text(max_size=40),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
    st.just("x" * 5000),
)
"""Recording / conversation ids: traversal, absolute paths, NUL, unicode, reserved names, long, valid."""


def resolve(value: str, parent: Path) -> str:
    """``value`` with the :data:`PARENT` placeholder replaced by ``parent``."""
    return value.replace(PARENT, str(parent))


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of every file under ``root`` and ``(-1, 0)`` per
    directory (``skip`` left out). Directory times are not compared: a temp file created and
    removed again (an atomic write that lost a race) changes them without leaving anything."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in dirnames:
            out[str(Path(dirpath, name).relative_to(root))] = (-1, 0)
        for name in filenames:
            full = Path(dirpath, name)
            info = full.lstat()
            out[str(full.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return out
