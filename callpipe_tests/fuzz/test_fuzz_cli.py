"""Fuzzing the ``callpipe`` command line: random commands, options, ids, paths, dates and files.

Contract: the exit code is 0, 1 or 2; stderr never holds a Python traceback; a user mistake
(exit 2) is exactly one line on stderr starting with ``callpipe``; a success prints JSON; and
nothing is written outside the store root. ``demo`` and real ``batch`` runs (Dagster) are left out:
they take seconds to minutes and read no user input beyond what is fuzzed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from callpipe.cli import build_parser, main
from callpipe.storage import LocalStore
from callpipe_tests.fuzz.support import COUNTS, fuzz, hostile_ids, resolve, snapshot
from callpipe_tests.fuzz.test_fuzz_storage import FLAC, WAV

HEAVY = {"demo", "batch"}
SEEDED = ("rec-1", "rec-2")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Store, inputs and working directory under ``tmp_path``; the store holds two recordings."""
    store = LocalStore(tmp_path / "store")
    for rid in SEEDED:
        store.save_recording(WAV, "conv-1", recording_id=rid)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "call.wav").write_bytes(WAV)
    (inputs / "call.flac").write_bytes(FLAC)
    (inputs / "junk.wav").write_bytes(b"not audio" * 30)
    (inputs / "empty.wav").write_bytes(b"")
    (inputs / "dir.wav").mkdir()
    (inputs / "words.json").write_text('[{"word": "mi", "confidence": 0.9}]')
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for name in ("S3_BUCKET", "S3_PREFIX", "RETENTION_DAYS", "PII_REDACTION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "store"))
    monkeypatch.setenv("CALLPIPE_PII_KEY", "fuzz-key-0123456789abcdef")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "cwd" / "dagster"))
    return tmp_path


ids = st.sampled_from(SEEDED) | hostile_ids
paths = st.sampled_from(
    [
        "{PARENT}/inputs/call.wav",
        "{PARENT}/inputs/call.flac",
        "{PARENT}/inputs/junk.wav",
        "{PARENT}/inputs/empty.wav",
        "{PARENT}/inputs/dir.wav",
        "{PARENT}/inputs/missing.wav",
        "",
        "-",
        "/",
        "{PARENT}/store/index",
        "../../../../etc/shadow",
        "{PARENT}/inputs/call.wav\x00x",
    ]
) | st.text(max_size=20)
dates = st.sampled_from(
    ["2025-03-12", "2025-02-30", "0000-01-01", "9999-12-31", "12/03/2025", "", "-1"]
) | st.text(max_size=12)
numbers = st.sampled_from(["1", "0", "-3", "1e9", "99999999999999999999", "nan", "", "٣"]) | st.text(
    max_size=6
)
json_text = st.one_of(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=10,
    ).map(json.dumps),
    st.lists(
        st.fixed_dictionaries(
            {"word": st.text(max_size=6), "confidence": st.floats() | st.text(max_size=3)},
            optional={"start": st.floats() | st.text(max_size=3)},
        ),
        max_size=6,
    ).map(json.dumps),
    st.text(max_size=40),
)


def _opt(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [name, v]))


_RECORD_GOOD = {
    "audio": st.sampled_from(["{PARENT}/inputs/call.wav", "{PARENT}/inputs/call.flac"]).map(lambda p: [p]),
    "conversation": st.sampled_from(["conv-1", "c2"]).map(lambda v: ["--conversation-id", v]),
    "transcript": st.sampled_from([[], ["--transcript", "mi salgo disponible"]]),
    "words": st.just([]),
    "direction": st.sampled_from([[], ["--direction", "outbound"]]),
    "agent": st.sampled_from([[], ["--agent-id", "a-7"]]),
    "phone": st.sampled_from([[], ["--caller-phone", "+34612345678"]]),
}
_RECORD_BAD = {
    "audio": st.lists(paths, max_size=2),
    "conversation": st.one_of(st.just([]), ids.map(lambda v: ["--conversation-id", v])),
    "transcript": st.text(max_size=60).map(lambda v: ["--transcript", v]),
    "words": st.just(["--word-confidences", "WORDS"]),
    "direction": st.sampled_from(["sideways", "", "INBOUND"]).map(lambda v: ["--direction", v]),
    "agent": st.text(max_size=10).map(lambda v: ["--agent-id", v]),
    "phone": (st.sampled_from(["612 345 678", "12", "abc", ""]) | st.text(max_size=8)).map(
        lambda v: ["--caller-phone", v]
    ),
}


def _record(hostile: tuple[str, ...]) -> st.SearchStrategy[list[list[str]]]:
    parts = [(_RECORD_BAD if name in hostile else _RECORD_GOOD)[name] for name in _RECORD_GOOD]
    return st.tuples(st.just(["record"]), *parts)


# Each example attacks one option (or none, or all), so most get past argparse to the real work.
record = st.sampled_from([(), *((n,) for n in _RECORD_GOOD), tuple(_RECORD_GOOD)]).flatmap(_record)
commands = st.one_of(
    record,
    st.tuples(st.just(["show"]), st.lists(ids, min_size=0, max_size=2)),
    st.tuples(st.sampled_from([["stats"], ["sync"], ["stats", "--json"], ["sync", "x"]])),
    st.tuples(
        st.just(["reprocess"]),
        st.lists(ids, max_size=1),
        _opt("--since", dates),
        st.lists(st.sampled_from(["stt", "analysis", "nope", ""]) | st.text(max_size=5), max_size=2).map(
            lambda stages: [x for s in stages for x in ("--stage", s)]
        ),
    ),
    st.tuples(
        st.just(["erase"]),
        st.lists(
            st.sampled_from(["--recording-id", "--conversation-id", "--caller-phone"]).flatmap(
                lambda flag: ids.map(lambda v: [flag, v])
            )
            | st.just(["--resume"]),
            max_size=2,
        ).map(lambda groups: [x for g in groups for x in g]),
    ),
    st.tuples(st.just(["retention"]), _opt("--days", numbers), st.lists(st.just("--dry-run"), max_size=1)),
    # batch only in forms that fail before a run starts
    st.tuples(
        st.just(["batch"]),
        st.sampled_from(
            [
                [],
                ["--mode", "single"],
                ["--mode", "date_range"],
                ["--mode", "nope"],
                ["--mode", "date_range", "--start-date", "2025-01-01"],
            ]
        ),
        st.sampled_from([[], ["--limit", "0"], ["--concurrent", "x"], ["--start-date", "2025-13-01"]]),
    ),
)


def _option_strings() -> list[str]:
    parser = build_parser()
    found = {"-h", "--help"}
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for name, sub in action.choices.items():
            found.add(name)
            for sub_action in sub._actions:
                found.update(sub_action.option_strings)
    return sorted(found - HEAVY)


junk = st.lists(st.sampled_from(_option_strings()) | st.text(max_size=12), max_size=6).filter(
    lambda argv: not argv or argv[0] not in HEAVY
)
flat = commands.map(lambda parts: [x for part in parts for x in part])
argvs = st.one_of(flat, flat, flat, junk)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def _check(argv: list[str], code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2), f"exit code {code}"
    assert "Traceback" not in err and "Traceback" not in out, err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("callpipe"), f"not one error line: {err!r}"
    elif code == 0 and not {"-h", "--help"} & set(argv):
        json.loads(out)


@given(argv=argvs)
@example(argv=["show", "../etc"])
@example(argv=["frobnicate"])
@example(argv=["record"])
@example(argv=["record", "{PARENT}/inputs/call.wav", "--conversation-id", "../../escape"])
@example(argv=["record", "{PARENT}/inputs/call.wav", "--conversation-id", "c", "--word-confidences", "WORDS"])
@example(argv=["reprocess", "--since", "2025-02-30"])
@example(argv=["retention", "--days", "99999999999999999999"])
@example(argv=["erase", "--recording-id", "rec-1", "--conversation-id", "conv-1"])
@fuzz(150)
def test_cli_never_tracebacks(workspace: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    words = workspace / "inputs" / "words.json"  # its content is fuzzed by the next test
    argv = [str(words) if a == "WORDS" else resolve(a, workspace) for a in argv]
    before = snapshot(workspace, skip=workspace / "store")
    code, out, err = _run(argv, capsys)
    _check(argv, code, out, err)
    after = snapshot(workspace, skip=workspace / "store")
    assert after == before, f"{argv} wrote outside the store: {sorted(set(after) ^ set(before))}"
    COUNTS[f"cli exit {code}"] += 1


@given(content=json_text)
@fuzz(40)
def test_cli_word_confidence_files(workspace: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    words = workspace / "inputs" / "fuzzed-words.json"
    words.write_text(content, encoding="utf-8")
    argv = [
        "record",
        str(workspace / "inputs" / "call.wav"),
        "--conversation-id",
        "c1",
        "--transcript",
        "mi salgo disponible",
        "--word-confidences",
        str(words),
    ]
    code, out, err = _run(argv, capsys)
    _check(argv, code, out, err)
    COUNTS[f"cli record --word-confidences exit {code}"] += 1


@pytest.mark.parametrize(
    "argv",
    [
        ["record", "{PARENT}/inputs/junk.wav", "--conversation-id", "../x"],
        ["frobnicate", "--now"],
        ["reprocess", "--since", "2025-13-45"],
    ],
)
def test_cli_subprocess_one_line_errors(workspace: Path, argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "callpipe.cli", *(resolve(a, workspace) for a in argv)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callpipe"), result.stderr
    COUNTS["cli subprocess exit 2"] += 1


env_values = st.fixed_dictionaries(
    {},
    optional={
        "STORAGE_BACKEND": st.sampled_from(["local", " LOCAL ", "both", "s3", "ftp", ""]),
        "STORAGE_LOCAL_PATH": st.sampled_from(
            ["{PARENT}/store", "/proc/callpipe-x", "/dev/null/x", "{PARENT}/inputs/call.wav"]
        ),
        "S3_MAX_ATTEMPTS": numbers,
        "S3_CONNECT_TIMEOUT": numbers,
        "RETENTION_DAYS": numbers,
        "PII_REDACTION": st.sampled_from(["mask", "drop", "off", "MASK", "xx", ""]),
    },
)
env_commands = st.sampled_from(
    [
        ["stats"],
        ["show", "rec-1"],
        ["retention", "--dry-run"],
        ["record", "{PARENT}/inputs/call.wav", "--conversation-id", "c", "--caller-phone", "+34612345678"],
    ]
)


@given(env=env_values, argv=env_commands)
@example(
    env={"STORAGE_LOCAL_PATH": "/proc/callpipe-x"},
    argv=["record", "{PARENT}/inputs/call.wav", "--conversation-id", "c"],
)  # traceback from mkdir before
@example(env={"STORAGE_BACKEND": "ftp"}, argv=["stats"])  # "1 validation error for StorageSettings"
@fuzz(40)
def test_cli_with_fuzzed_environment(
    workspace: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    argv: list[str],
) -> None:
    with monkeypatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, resolve(value, workspace))
        argv = [resolve(a, workspace) for a in argv]
        before = snapshot(workspace, skip=workspace / "store")
        code, out, err = _run(argv, capsys)
    _check(argv, code, out, err)
    if code == 2:
        assert "validation error" not in err, f"pydantic's summary line is no message: {err!r}"
    assert snapshot(workspace, skip=workspace / "store") == before
    COUNTS[f"cli with fuzzed env exit {code}"] += 1
