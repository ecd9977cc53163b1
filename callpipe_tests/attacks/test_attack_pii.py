"""Issue 17 item 4: no phone number or IBAN in clear in the clarification reason, the record output
or the stored document (``PII_REDACTION=drop``: no raw value anywhere; ``mask``: never in the reason)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from callpipe.cli import main
from callpipe_tests.storage.conftest import make_wav

TEXT = "mi teléfono es 612 345 678 y el IBAN es ES91 2100 0418 4502 0005 1332 gracias"
Recorded = tuple[dict[str, Any], str]
RAW = ["612", "345", "678", "ES91", "2100", "0418", "4502", "0005", "1332"]


def leaks(text: str) -> list[str]:
    """The raw values found in ``text`` as whole tokens (a checksum's hex digits are no leak)."""
    return [value for value in RAW if re.search(rf"(?<![0-9A-Za-z]){value}(?![0-9A-Za-z])", text)]


def _words(low: float = 0.2) -> list[dict[str, object]]:
    return [{"word": w, "confidence": low if any(ch.isdigit() for ch in w) else 0.95} for w in TEXT.split()]


@pytest.fixture
def recorded(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> tuple[dict[str, object], str]:
    root = tmp_path / "recordings"
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(root))
    monkeypatch.setenv("PII_REDACTION", request.param)
    wav, words = tmp_path / "call.wav", tmp_path / "words.json"
    wav.write_bytes(make_wav())
    words.write_text(json.dumps(_words()), encoding="utf-8")
    args = [
        "record",
        str(wav),
        "--conversation-id",
        "c1",
        "--transcript",
        TEXT,
        "--word-confidences",
        str(words),
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    [doc] = list((root / "metadata").rglob("*.json"))
    return out, doc.read_text(encoding="utf-8")


@pytest.mark.parametrize("recorded", ["mask", "drop"], indirect=True)
def test_clarification_names_kind_and_position_never_the_value(
    recorded: tuple[dict[str, object], str],
) -> None:
    out, stored = recorded
    online = out["online"]
    assert isinstance(online, dict) and online["needs_clarification"] is True
    reason = online["clarification_reason"]
    assert "teléfono incierto" in reason and "número de cuenta incierto" in reason and "palabra 3" in reason
    assert not leaks(reason), reason
    stored_reason = json.loads(stored)["transcription"]["clarification_reason"]
    assert not leaks(stored_reason), stored_reason


@pytest.mark.parametrize("recorded", ["drop"], indirect=True)
def test_drop_keeps_no_raw_value_in_the_document_or_the_output(
    recorded: tuple[dict[str, object], str],
) -> None:
    out, stored = recorded
    printed = json.dumps(out, ensure_ascii=False)
    assert not leaks(printed), printed
    assert not leaks(stored), stored


@pytest.mark.parametrize(
    "hidden",
    ["\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "\u2066", "\u00ad"],
    ids=["zwsp", "zwj", "word-joiner", "bom", "rlo", "lri", "soft-hyphen"],
)
def test_invisible_characters_between_digits_hide_nothing(hidden: str) -> None:
    """A zero-width or bidi-control character inside a phone number or IBAN would break the digit
    runs the patterns look for; redaction removes them first, in free text and in word lists."""
    from callpipe.pii import _redact_words, redact
    from callpipe.schema import WordConfidence

    text = TEXT.replace("612 345", f"6{hidden}12 34{hidden}5").replace("2100 0418", f"21{hidden}00 0418")
    out = redact(text)
    assert leaks(out.replace(hidden, "")) == [], out
    assert hidden not in out
    assert "[PHONE]" in out and "[IBAN]" in out
    words = [WordConfidence(word=w, confidence=0.9) for w in text.split()]
    kept = " ".join(w.word for w in _redact_words(words))
    assert leaks(kept.replace(hidden, "")) == [], kept
