"""The frozen real-speech report set: its checksum, and that it shares no prompt with any other set."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
REPORT = BENCH / "data" / "real_speech_report.json"
MANIFEST = BENCH / "data" / "real_speech_manifest.sha256"


def test_report_set_matches_its_manifest() -> None:
    digest, name = MANIFEST.read_text(encoding="utf-8").split()
    assert name == REPORT.name
    assert hashlib.sha256(REPORT.read_bytes()).hexdigest() == digest


def test_report_calls_share_no_prompt_with_the_excluded_ones() -> None:
    recipe = json.loads(REPORT.read_text(encoding="utf-8"))
    names = [p["prompt"] for call in recipe["calls"] for p in call["prompts"]]
    assert len(names) == len(set(names))
    assert not set(names) & set(recipe["excluded_prompts"])
    for call in recipe["calls"]:
        assert call["reference"] == " ".join(p["text"] for p in call["prompts"])


def test_no_other_benchmark_or_test_uses_a_report_prompt() -> None:
    sys.path.insert(0, str(BENCH))
    real_speech_set = pytest.importorskip("real_speech_set")
    from wer_calibration import REAL_SOUNDS, REAL_TEXT, load_real_prompts

    if not (REAL_SOUNDS.is_dir() and REAL_TEXT.is_file()):
        pytest.skip("asterisk-core-sounds-es(-gsm) not installed (scripts/bootstrap installs them)")
    prompts = load_real_prompts(REAL_SOUNDS, REAL_TEXT)
    recipe = json.loads(REPORT.read_text(encoding="utf-8"))
    names = {p["prompt"] for call in recipe["calls"] for p in call["prompts"]}
    texts = dict(prompts)
    for call in recipe["calls"]:
        for part in call["prompts"]:
            assert texts[part["prompt"]] == part["text"]  # references are the shipped texts
    assert not names & real_speech_set.used_prompts(prompts, BENCH.parent)
