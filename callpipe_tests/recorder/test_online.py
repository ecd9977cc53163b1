"""Online correction: confidence gating, context, case/punctuation, clarification, alignment."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callpipe.recorder import (
    CLARIFICATION_THRESHOLD_ENV,
    CORRECTION_THRESHOLD_ENV,
    ENV_FILE,
    ConfusionDictionary,
    CorrectionConfigError,
    InvalidConfidenceError,
    OnlineCorrectionPipeline,
    get_correction_pipeline,
)
from callpipe.schema import Correction, WordConfidence

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dictionary() -> ConfusionDictionary:
    with pytest.MonkeyPatch.context() as env:
        env.delenv(ENV_FILE, raising=False)
        return ConfusionDictionary.load_default()


@pytest.fixture
def pipeline(dictionary: ConfusionDictionary, monkeypatch: pytest.MonkeyPatch) -> OnlineCorrectionPipeline:
    monkeypatch.delenv(CORRECTION_THRESHOLD_ENV, raising=False)
    monkeypatch.delenv(CLARIFICATION_THRESHOLD_ENV, raising=False)
    return OnlineCorrectionPipeline(dictionary)


def conf(text: str, low: dict[int, float] | None = None, default: float = 0.95) -> list[float]:
    """A confidence per whitespace word: ``default`` except the positions in ``low``."""
    values = [default] * len(text.split())
    for index, value in (low or {}).items():
        values[index] = value
    return values


async def test_required_example_is_corrected(pipeline: OnlineCorrectionPipeline) -> None:
    text = "Necesito revisar el salgo de mi cuesta"
    result = await pipeline.process_online(text, conf(text, {3: 0.31, 6: 0.42}), "conv-1")
    assert result["corrected_text"] == "Necesito revisar el saldo de mi cuenta"
    assert result["processing_mode"] == "online"
    assert result["processing_time_ms"] > 0  # its latency: benchmarks/online_latency.py
    assert result["needs_clarification"] is False and result["clarification_reason"] is None
    corrections = [Correction.model_validate(c) for c in result["corrections_made"]]
    assert [(c.original, c.corrected, c.position, c.confidence) for c in corrections] == [
        ("salgo", "saldo", 3, 0.31),
        ("cuesta", "cuenta", 6, 0.42),
    ]
    assert all(c.method == "fast_exact" for c in corrections)
    assert corrections[0].evidence["rule"] == "salgo -> saldo"
    assert corrections[0].evidence["cue"] == "el" and corrections[0].evidence["side"] == "before"
    assert corrections[1].evidence["cue"] == "mi"
    assert corrections[1].evidence["threshold"] == 0.7


@pytest.mark.parametrize(
    "text",
    [
        "salgo de casa a las ocho",
        "¿cuánto cuesta la tarifa?",
        "me cuesta entenderlo",
        "cuánto me cuesta cerrar la cuenta",
        "el lunes salgo de viaje",
        "tengo fiebre y no puedo ir",
        "me rompí la muñeca, tengo una fractura",
        "lo sentimos mucho, señora",
        "no importa, gracias",
    ],
)
def test_vetoed_or_unsupported_contexts_stay(pipeline: OnlineCorrectionPipeline, text: str) -> None:
    result = pipeline.correct(text, conf(text, default=0.2))
    assert result["corrected_text"] == text
    assert result["corrections_made"] == []


def test_high_confidence_is_never_touched(pipeline: OnlineCorrectionPipeline) -> None:
    text = "Necesito revisar el salgo de mi cuesta"
    result = pipeline.correct(text, conf(text, {3: 0.95}, default=0.3))
    assert result["corrected_text"] == "Necesito revisar el salgo de mi cuenta"
    assert [c["position"] for c in result["corrections_made"]] == [6]


def test_threshold_is_strict_and_configurable(
    dictionary: ConfusionDictionary, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "revisar el salgo disponible"
    default = OnlineCorrectionPipeline(dictionary)
    assert default.correct(text, conf(text, {2: 0.7}))["corrections_made"] == []
    assert default.correct(text, conf(text, {2: 0.69}))["corrected_text"] == "revisar el saldo disponible"
    monkeypatch.setenv(CORRECTION_THRESHOLD_ENV, "0.2")
    assert OnlineCorrectionPipeline(dictionary).correct(text, conf(text, {2: 0.3}))["corrections_made"] == []
    monkeypatch.setenv(CORRECTION_THRESHOLD_ENV, "alto")
    with pytest.raises(CorrectionConfigError, match=CORRECTION_THRESHOLD_ENV):
        OnlineCorrectionPipeline(dictionary)


def test_correct_words_are_never_changed(pipeline: OnlineCorrectionPipeline, dictionary) -> None:
    """Sentences made only of right forms stay as they are, however unsure the ASR was."""
    sentences = [
        "quiero consultar el saldo de mi cuenta corriente",
        "me han cobrado una comisión por la transferencia",
        "la factura de la luz de este mes es muy alta",
        "necesito el número de teléfono del técnico para la avería de la fibra",
        "he recibido la nómina y quiero pagar la cuota del préstamo",
        "a ver si me pueden dar de baja la línea de prepago",
    ]
    rng = random.Random(3)
    wrongs = {e.wrong for e in dictionary.entries}
    rights = [
        e.right for e in dictionary.entries if len(e.right.split()) == 1 and e.right.lower() not in wrongs
    ]
    for _ in range(40):
        sentences.append(" ".join(rng.choice(rights) for _ in range(rng.randint(5, 15))))
    for text in sentences:
        result = pipeline.correct(text, conf(text, default=0.05))
        assert result["corrected_text"] == text, result["corrections_made"]


def test_full_confidence_changes_nothing(pipeline: OnlineCorrectionPipeline, dictionary) -> None:
    for entry in dictionary.entries:
        text = " ".join([*entry.before[:1], entry.wrong, *entry.after[:1]])
        result = pipeline.correct(text, conf(text, default=1.0))
        assert result["corrections_made"] == [], entry.origin


def test_case_and_punctuation_are_kept(pipeline: OnlineCorrectionPipeline) -> None:
    cases = {
        "Revisar el SALGO, por favor": "Revisar el SALDO, por favor",
        "¿Salgo disponible?": "¿Saldo disponible?",
        "Haber si me ayudan.": "A ver si me ayudan.",
        "QUIERO DARLE BAJA": "QUIERO DAR DE BAJA",
        "pagué la «fractura» de la luz": "pagué la «factura» de la luz",
        "mi tarjeta de credito.": "mi tarjeta de crédito.",
        "Vi el cargo en mi TARGETA": "Vi el cargo en mi TARJETA",
    }
    for text, expected in cases.items():
        result = pipeline.correct(text, conf(text, default=0.4))
        assert result["corrected_text"] == expected


def test_multiword_correction_reports_first_position(pipeline: OnlineCorrectionPipeline) -> None:
    text = "quiero cancelar a domiciliación del recibo"
    result = pipeline.correct(text, conf(text, {2: 0.5, 3: 0.6}))
    assert result["corrected_text"] == "quiero cancelar la domiciliación del recibo"
    (c,) = result["corrections_made"]
    assert (c["original"], c["corrected"], c["position"], c["confidence"]) == (
        "a domiciliación",
        "la domiciliación",
        2,
        0.5,
    )
    vetoed = "quiero pasar a domiciliación bancaria"
    assert pipeline.correct(vetoed, conf(vetoed, default=0.3))["corrections_made"] == []


@pytest.mark.parametrize(
    ("text", "low", "reason"),
    [
        ("me han cobrado cuarenta y cinco euros", {3: 0.31}, "importe incierto: palabra 3 (0.31)"),
        ("el IBAN es ES91 2100 0418 4502 0005 1332", {4: 0.2}, "número de cuenta incierto: palabra 4 (0.20)"),
        ("la tarjeta acaba en cuatro cinco dos uno", {5: 0.4}, "número de tarjeta incierto: palabra 5"),
        ("mi DNI es 12345678Z", {3: 0.1}, "documento de identidad incierto: palabra 3 (0.10)"),
        ("el número es seiscientos doce", {3: 0.45}, "número incierto: palabra 3 (0.45)"),
        ("pagué 45€ ayer", {1: 0.3}, "importe incierto: palabra 1 (0.30)"),
    ],
)
def test_uncertain_critical_values_ask_for_clarification(
    pipeline: OnlineCorrectionPipeline, text: str, low: dict[int, float], reason: str
) -> None:
    result = pipeline.correct(text, conf(text, low))
    assert result["needs_clarification"] is True
    assert result["clarification_reason"].startswith(reason)
    assert text.split()[next(iter(low))] not in result["clarification_reason"]  # never the value


@pytest.mark.parametrize(
    ("text", "low"),
    [
        ("me han cobrado cuarenta y cinco euros", {}),  # sure numbers
        ("me han cobrado cuarenta y cinco euros", {1: 0.1, 2: 0.2}),  # unsure, not the number
        ("quiero hablar con un agente ahora", {0: 0.1, 4: 0.1}),
        ("salgo de casa a las ocho", {5: 0.2}),  # a clock time
        ("he llamado tres veces", {2: 0.2}),  # a count, not a value
        ("tengo una duda", {1: 0.1}),  # "una" is not a number here
    ],
)
def test_no_clarification_without_uncertain_critical_value(
    pipeline: OnlineCorrectionPipeline, text: str, low: dict[int, float]
) -> None:
    result = pipeline.correct(text, conf(text, low))
    assert result["needs_clarification"] is False
    assert result["clarification_reason"] is None


def test_clarification_threshold_from_env(dictionary, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "me han cobrado cuarenta euros"
    monkeypatch.setenv(CLARIFICATION_THRESHOLD_ENV, "0.3")
    assert (
        OnlineCorrectionPipeline(dictionary).correct(text, conf(text, {3: 0.35}))["needs_clarification"]
        is False
    )
    monkeypatch.setenv(CLARIFICATION_THRESHOLD_ENV, "0.4")
    assert (
        OnlineCorrectionPipeline(dictionary).correct(text, conf(text, {3: 0.35}))["needs_clarification"]
        is True
    )


def test_mismatched_bare_numbers_are_treated_as_unknown(pipeline: OnlineCorrectionPipeline) -> None:
    text = "revisar el salgo de cuarenta euros"
    for confidences in ([0.1] * 4, [0.1] * 9):
        result = pipeline.correct(text, confidences)
        assert result["confidence_alignment"] == "none"
        assert result["corrected_text"] == text
        assert result["needs_clarification"] is False


def test_mismatched_words_are_aligned_by_word(pipeline: OnlineCorrectionPipeline) -> None:
    text = "revisar el salgo de cuarenta euros"
    words = [  # the ASR split "cuarenta" in two and put punctuation on words
        {"word": " Revisar", "confidence": 0.9},
        {"word": " el", "confidence": 0.9},
        {"word": " salgo", "confidence": 0.3},
        {"word": " de", "confidence": 0.9},
        {"word": " cuaren", "confidence": 0.2},
        {"word": "ta", "confidence": 0.2},
        {"word": " euros.", "confidence": 0.9},
    ]
    result = pipeline.correct(text, words)
    assert result["confidence_alignment"] == "words"
    assert result["corrected_text"] == "revisar el saldo de cuarenta euros"
    assert result["needs_clarification"] is False  # "cuarenta" got no confidence: unknown


def test_confidence_item_kinds(pipeline: OnlineCorrectionPipeline) -> None:
    text = "el salgo disponible"
    kinds = [
        [WordConfidence(word=w, confidence=c) for w, c in zip(text.split(), (0.9, 0.2, 0.9), strict=True)],
        [{"word": "el", "probability": 0.9}, {"word": "salgo", "probability": 0.2}, {"word": "x"}],
        [0.9, 0.2, None],
    ]
    for items in kinds:
        assert pipeline.correct(text, items)["corrected_text"] == "el saldo disponible"
    unknown = pipeline.correct(text, [0.9, None, 0.9])
    assert unknown["corrections_made"] == [] and unknown["confidence_alignment"] == "index"
    assert pipeline.correct(text, None)["confidence_alignment"] == "missing"
    assert pipeline.correct(text)["corrected_text"] == text


@pytest.mark.parametrize(
    "bad", [[0.9, "alta", 0.9], [0.9, 1.5, 0.9], [0.9, float("nan"), 0.9], [True, 0.2, 0.9]]
)
def test_invalid_confidence_items_raise(pipeline: OnlineCorrectionPipeline, bad: list) -> None:
    with pytest.raises(InvalidConfidenceError):
        pipeline.correct("el salgo disponible", bad)


def test_empty_and_blank_transcripts(pipeline: OnlineCorrectionPipeline) -> None:
    for text in ("", "   "):
        result = pipeline.correct(text, [])
        assert result["corrected_text"] == text
        assert result["corrections_made"] == [] and result["needs_clarification"] is False
    with pytest.raises(TypeError):
        pipeline.correct(None)  # type: ignore[arg-type]


async def test_cached_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FILE, raising=False)
    get_correction_pipeline.cache_clear()
    first = get_correction_pipeline()
    assert get_correction_pipeline() is first
    text = "el salgo de mi cuenta"
    result = await first.process_online(text, conf(text, {1: 0.2}))
    assert result["corrected_text"] == "el saldo de mi cuenta"
    get_correction_pipeline.cache_clear()


def test_cpu_cost_per_call_is_well_under_a_millisecond(pipeline: OnlineCorrectionPipeline) -> None:
    text = "buenos días necesito revisar el salgo de mi cuesta porque me han cobrado cuarenta euros de más"
    confidences = conf(text, {5: 0.3, 8: 0.4, 14: 0.6})
    samples = []
    for _ in range(2000):
        started = time.thread_time_ns()
        pipeline.correct(text, confidences)
        samples.append(time.thread_time_ns() - started)
    samples.sort()
    assert samples[len(samples) // 2] < 500_000  # median CPU time under 0.5 ms


def test_import_does_not_pull_heavy_dependencies() -> None:
    heavy = ("dagster", "faster_whisper", "torch", "ctranslate2")
    code = (
        "import sys, json, callpipe.recorder as r; r.get_correction_pipeline();"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_FILE}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
