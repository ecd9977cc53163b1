"""Personal data: redaction, caller phone keys, PII_REDACTION modes through the real pipeline,
and no personal data or credentials in logs, Dagster events or stored files."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from callpipe import pii
from callpipe.cli import main
from callpipe.demo_calls import load_demo_calls
from callpipe.pii import RedactionMode, apply_redaction, caller_info, phone_key, redact
from callpipe.recorder import Recorder
from callpipe.schema import RecordingMetadata, Transcription, Turn, WordConfidence
from callpipe.stage_list import STAGES, StageSpec
from callpipe.storage import LocalStore, MirroredStore, RecordingNotFoundError, S3Store, make_s3_client
from callpipe_tests.storage.conftest import make_wav

KEY = "test-pii-key-0123456789abcdef"
CALLER = "+34 699 11 22 33"
TRANSCRIPT = (
    "buenos dias le atiende laura mi correo es ana.lopez@example.org y mi iban es "
    "ES91 2100 0418 4502 0005 1332 el telefono seis uno dos tres cuatro cinco seis siete ocho "
    "y mi dni 12345678Z quiero revisar el saldo de cuarenta euros"
)
# Every raw value of TRANSCRIPT and CALLER, compared with whitespace removed from the haystack.
NEEDLES = ("ana.lopez@example.org", "ES9121000418450200051332", "12345678Z", "699112233")
SPOKEN_PHONE = "seis uno dos tres cuatro cinco seis siete ocho"


def leaks(text: str) -> list[str]:
    compact = re.sub(r"\s", "", text)
    found = [n for n in NEEDLES if n.lower() in compact.lower()]
    return found + ([SPOKEN_PHONE] if SPOKEN_PHONE in text else [])


@pytest.fixture(autouse=True)
def pii_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pii.KEY_ENV, KEY)
    monkeypatch.delenv(pii.MODE_ENV, raising=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TRANSCRIPT, "mi correo es [EMAIL] y mi iban es [IBAN] el telefono [PHONE] y mi dni [DNI] quiero"),
        (
            "llame al +34 612 34 56 78, la tarjeta 4111 1111 1111 1111 gracias",
            "al [PHONE], la tarjeta [CARD] g",
        ),
        ("escriba a juan punto perez arroba gmail punto com vale", "escriba a [EMAIL] vale"),
        ("mi nie es x uno dos tres cuatro cinco seis siete zeta y ya", "mi nie es [NIE] y ya"),
        ("cuenta 2100 0418 4502 0005 1332 por favor", "cuenta [ACCOUNT] por favor"),
        # No valid check letter / digits: still redacted by shape.
        ("el dni es doce tres cuatro cinco seis siete ocho equis", "el dni es [DNI]"),
        ("mi correo es pepito arroba jotmeil punto com", "mi correo es [EMAIL]"),
        ("referencia 98765432 del pedido", "referencia [NUMBER] del pedido"),
        # Phones and ids said as digit words in groups, with commas, fillers or "y" between them.
        ("seis uno dos, tres cuatro cinco y seis siete ocho es el fijo", "[PHONE] es el fijo"),
        ("eh, seis uno dos, eh, tres cuatro cinco, seis siete ocho, dos veces", "eh, [PHONE] veces"),
        ("el nie, i griega, dos tres cuatro, cinco seis siete ocho, zeta, vale", "el nie, [NIE], vale"),
    ],
)
def test_redact_replaces_personal_data_with_typed_tags(text: str, expected: str) -> None:
    out = redact(text)
    assert expected in out, out
    assert redact(out) == out  # idempotent


def test_amounts_dates_and_ordinary_numbers_stay() -> None:
    text = "pague mil doscientos cuarenta euros con cincuenta el 12/05/2024, tengo dos hijos y 3 gatos"
    assert redact(text) == text


def test_phone_normalization_mask_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pii.normalize_phone("699 11 22 33") == pii.normalize_phone("+34699112233") == "+34699112233"
    assert pii.mask_phone("+34699112233") == "+34 6** ** ** 33"
    expected = hmac.new(KEY.encode(), b"+34699112233", hashlib.sha256).hexdigest()
    assert phone_key("699112233") == phone_key("+34 699-11-22-33") == expected
    assert expected != hashlib.sha256(b"+34699112233").hexdigest()
    monkeypatch.setenv(pii.KEY_ENV, KEY + "x")
    assert phone_key("699112233") != expected  # another deployment's key gives other keys
    for bad in ("", "12", "hola"):
        with pytest.raises(ValueError, match="caller phone"):
            pii.normalize_phone(bad)
    monkeypatch.setenv(pii.KEY_ENV, "short")
    with pytest.raises(pii.PIIConfigError) as info:
        phone_key("699112233")
    assert "short" not in str(info.value)


def test_key_file_is_created_once_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pii.KEY_ENV)
    path = tmp_path / "keys" / "pii.key"
    monkeypatch.setenv(pii.KEY_FILE_ENV, str(path))
    first = phone_key("699112233")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text()) == 64
    pii._KEYS.clear()  # a new process reads the same file
    assert phone_key("699112233") == first
    assert [p.name for p in path.parent.iterdir()] == ["pii.key"]  # no temp file left


def test_mode_from_env_and_caller_info(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RedactionMode.from_env() is RedactionMode.MASK
    monkeypatch.setenv(pii.MODE_ENV, " DROP ")
    assert RedactionMode.from_env() is RedactionMode.DROP
    monkeypatch.setenv(pii.MODE_ENV, "partial")
    with pytest.raises(pii.PIIConfigError, match="PII_REDACTION"):
        RedactionMode.from_env()
    off, mask = caller_info(CALLER, RedactionMode.OFF), caller_info(CALLER, RedactionMode.MASK)
    assert off.phone == "+34699112233" and mask.phone is None
    assert off.phone_key == mask.phone_key == phone_key(CALLER) and mask.phone_masked == "+34 6** ** ** 33"


def _document() -> RecordingMetadata:
    from callpipe.analysis.entities import extract_entities

    words = [WordConfidence(word=w, confidence=0.9) for w in TRANSCRIPT.split()]
    live = Transcription(text=TRANSCRIPT, word_confidences=words)
    return RecordingMetadata(
        recording_id="r1",
        conversation_id="c1",
        caller={"phone": "+34699112233"},
        transcription=live.model_copy(update={"corrected_text": TRANSCRIPT + "."}),
        online_transcription=live,
        entities=extract_entities(TRANSCRIPT, names=False),
        turns=[Turn(speaker="customer", start=0, end=1, text=TRANSCRIPT)],
        extra={"reference_text": TRANSCRIPT, "agent_id": "agent-001"},
    )


def test_mask_keeps_text_beside_redacted_and_masks_entities() -> None:
    doc = apply_redaction(_document(), RedactionMode.MASK)
    assert doc.transcription.text == TRANSCRIPT and "[IBAN]" in doc.transcription.redacted_text
    assert doc.caller.phone is None and doc.caller.phone_key == phone_key(CALLER)
    values = {
        e.value
        for f in ("emails", "account_numbers", "national_ids", "phone_numbers")
        for e in getattr(doc.entities, f)
    }
    assert values == {"a***@example.org", "ES******************1332", "*****678Z", "+34 6** ** ** 78"}
    assert not leaks(doc.entities.model_dump_json() + doc.caller.model_dump_json())
    assert apply_redaction(doc.model_copy(deep=True), RedactionMode.MASK) == doc


def test_mask_redacts_the_turns_once_and_the_tables_reuse_it_only_while_it_matches() -> None:
    from callpipe.analytics import rows_for_day

    doc = _document()
    doc.turns.append(Turn(speaker="agent", start=1, end=2, text="gracias por llamar"))
    doc.processed = True
    apply_redaction(doc, RedactionMode.MASK)
    # the finalize stage kept the redacted text of the turn with personal data, not of the other
    assert doc.turn_redaction is not None and set(doc.turn_redaction.changed) == {0}
    assert doc.turns[0].text == TRANSCRIPT and not leaks(doc.turn_redaction.model_dump_json())
    stored = RecordingMetadata.model_validate_json(doc.model_dump_json(context={"compact": True}))
    assert stored.turn_redaction == doc.turn_redaction
    _, turns, _ = rows_for_day([stored], mode=RedactionMode.MASK)
    assert [t["text"] for t in turns] == [redact(TRANSCRIPT), "gracias por llamar"]
    # a turn edited after the redaction (or rules newer than it) is redacted again, never trusted
    stored.turns[1] = stored.turns[1].model_copy(update={"text": "mi dni 12345678Z"})
    _, turns, _ = rows_for_day([stored], mode=RedactionMode.MASK)
    assert turns[1]["text"] == "mi dni [DNI]" and not leaks(" ".join(t["text"] for t in turns))
    forged = stored.model_copy(deep=True)
    forged.turn_redaction = pii.redact_turns([t.text for t in forged.turns])
    forged.turn_redaction.fingerprint = pii.turns_fingerprint(["other"])
    _, turns, _ = rows_for_day([forged], mode=RedactionMode.MASK)
    assert turns[1]["text"] == "mi dni [DNI]"
    # drop: the document's turns are redacted themselves and carry no separate copy
    dropped = apply_redaction(_document(), RedactionMode.DROP)
    assert dropped.turn_redaction is None and dropped.turns[0].text == redact(TRANSCRIPT)


def test_retention_drops_the_kept_turn_redaction() -> None:
    from callpipe.retention import deidentify

    doc = apply_redaction(_document(), RedactionMode.MASK)
    assert doc.turn_redaction is not None
    deidentify(doc, 30, datetime.now(UTC))
    assert doc.turn_redaction is None


def test_drop_leaves_no_raw_value_anywhere_in_the_document() -> None:
    doc = apply_redaction(_document(), RedactionMode.DROP)
    assert not leaks(doc.model_dump_json())
    words = [w.word for w in doc.transcription.word_confidences]
    assert len(words) == len(TRANSCRIPT.split()) and words.count("[PHONE]") == 9
    assert doc.turns[0].text == doc.transcription.text == redact(TRANSCRIPT)
    assert doc.extra["agent_id"] == "agent-001" and doc.entities.emails[0].value == "[EMAIL]"
    original = _document()
    assert apply_redaction(original.model_copy(deep=True), RedactionMode.OFF) == original  # off: no change


def test_recorder_drop_and_cli_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "drop")
    Recorder(store, redaction=RedactionMode.DROP).record_sync(
        make_wav(), "conv-1", transcription=TRANSCRIPT, caller_phone=CALLER, recording_id="rec-drop"
    )
    on_disk = "".join(p.read_text(errors="ignore") for p in store.root.rglob("*") if p.is_file())
    assert "[IBAN]" in on_disk and not leaks(on_disk)
    with pytest.raises(ValueError, match="caller phone"):
        Recorder(store).record_sync(make_wav(), "conv-1", caller_phone="123", recording_id="rec-bad")
    assert not (store.root / "index" / "by-id" / "rec-bad").exists()

    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "cli"))
    wav = tmp_path / "call.wav"
    wav.write_bytes(make_wav())
    args = ["record", str(wav), "--conversation-id", "c1", "--transcript", TRANSCRIPT]
    assert main([*args, "--caller-phone", "12"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main([*args, "--caller-phone", CALLER]) == 0
    printed = capsys.readouterr().out
    assert not leaks(printed)
    saved = LocalStore(tmp_path / "cli").get_metadata(json.loads(printed)["recording_id"])
    assert saved.caller.phone_key == phone_key(CALLER) and saved.transcription.text == TRANSCRIPT


# ---- through the real pipeline -------------------------------------------------------------------


@pytest.fixture
def mirrored(tmp_path: Path, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A local + moto S3 store reached with a recognisable secret key."""
    secret = f"SECRET-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    client = make_s3_client(region_name="us-east-1", endpoint_url=s3_server)
    bucket = f"pii-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    store = MirroredStore(
        LocalStore(tmp_path / "store"), S3Store(bucket, "cp", client, cache_dir=tmp_path / "c")
    )
    resource = {
        "backend": "both",
        "local_path": str(tmp_path / "store"),
        "s3_bucket": bucket,
        "s3_prefix": "cp",
        "s3": S3Resource(endpoint_url=s3_server, region_name="us-east-1"),
    }
    yield {
        "store": store,
        "client": client,
        "bucket": bucket,
        "secret": secret,
        "resource": resource,
        "root": tmp_path / "store",
        "cache": tmp_path / "c",
    }


def _stored_text(setup: dict[str, Any]) -> str:
    client, bucket = setup["client"], setup["bucket"]
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    remote = [client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in objects]
    local = [p.read_bytes() for p in setup["root"].rglob("*") if p.is_file()]
    return b"\n".join(remote + local).decode("utf-8", errors="ignore")


def _record(store: Any, recording_id: str) -> None:
    call = next(c for c in load_demo_calls() if c.call_id == "saldo")
    Recorder(store).record_sync(
        call.audio,
        "conv-pii",
        transcription=TRANSCRIPT,
        audio_format="flac",
        caller_phone=CALLER,
        word_confidences=[{"word": w, "confidence": 0.99} for w in TRANSCRIPT.split()],
        timestamp=datetime(2026, 10, 5, 10, tzinfo=UTC),
        recording_id=recording_id,
    )


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["mask", "drop"])
def test_pipeline_run_keeps_pii_out_of_logs_events_and_metadata(
    mode: str,
    mirrored: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from callpipe.defs.assets import ALL_ASSETS
    from callpipe.defs.checks import ALL_CHECKS
    from callpipe.defs.resources import AnalyticsTablesResource, RecordingStoreResource, StageModelsResource

    caplog.set_level(logging.INFO)
    store = mirrored["store"]
    _record(store, "pii-ok")  # online in mask mode: the raw transcript is stored
    _record(store, "pii-fail")
    monkeypatch.setenv(pii.MODE_ENV, mode)
    entities = STAGES["entities"]

    def failing(meta: RecordingMetadata, services: Any, backend: Any) -> dict[str, Any]:
        if meta.recording_id == "pii-fail":  # an error message quoting the transcript
            raise ValueError(f"cannot read: {meta.transcription.text}")
        return entities.run(meta, services, backend)

    monkeypatch.setitem(STAGES, "entities", StageSpec(entities.version, entities.inputs, failing))
    resources = {
        "store": RecordingStoreResource(**mirrored["resource"]),
        "tables": AnalyticsTablesResource(),
        "models": StageModelsResource(),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            partition_key="2026-10-05",
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        events = "\n".join(dg.serialize_value(e) for e in instance.all_logs(result.run_id))
        run = dg.serialize_value(instance.get_run_by_id(result.run_id))
    assert result.asset_value("call_analytics")["processed"] == ["pii-ok"]
    assert "[IBAN]" in events and "cannot read" in events  # the failure reason reached the UI, redacted
    out, err = capfd.readouterr()
    for name, text in {"events": events + run, "logs": caplog.text + out + err}.items():
        assert not leaks(text), name
        assert mirrored["secret"] not in text, name
    meta = store.get_metadata("pii-ok")
    assert "[PHONE]" in meta.transcription.redacted_text and meta.caller.phone_key == phone_key(CALLER)
    assert "[IBAN]" in store.get_metadata("pii-fail").status.error
    stored = _stored_text(mirrored)
    assert mirrored["secret"] not in stored and "699112233" not in re.sub(r"\s", "", stored)
    if mode == "drop":
        assert not leaks(stored)
        assert store.get_transcript("pii-ok") == meta.transcription.redacted_text
        with pytest.raises(RecordingNotFoundError):  # no second copy: the .txt is already redacted
            store.get_transcript("pii-ok", redacted=True)
    else:
        assert store.get_transcript("pii-ok") == meta.transcription.corrected_text
        assert meta.transcription.text == TRANSCRIPT
        for side in (store.local, store.s3):  # the redacted transcript file beside the original
            redacted = side.get_transcript("pii-ok", redacted=True)
            assert redacted == meta.transcription.redacted_text and not leaks(redacted)


@pytest.mark.slow
def test_batch_on_postgres_writes_no_credentials(
    pg_url: str,
    mirrored: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import psycopg2

    from callpipe_tests.scale.workers import REPO_ROOT

    password = f"pw-{uuid.uuid4().hex}"
    user_host = pg_url.split("://", 1)[1]
    monkeypatch.chdir(REPO_ROOT)
    for name in [n for n in os.environ if n.startswith(("DAGSTER_PG_", "CELERY_", "CALLPIPE_EXECUTOR"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(
        "DAGSTER_PG_URL", f"postgresql+psycopg2://{user_host.replace('@', f':{password}@', 1)}"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    env = {
        "STORAGE_BACKEND": "both",
        "STORAGE_LOCAL_PATH": str(mirrored["root"]),
        "S3_BUCKET": mirrored["bucket"],
        "S3_PREFIX": "cp",
        "S3_ENDPOINT_URL": mirrored["resource"]["s3"].endpoint_url,
        "S3_REGION": "us-east-1",
        "STORAGE_CACHE_DIR": str(mirrored["cache"]),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _record(mirrored["store"], "pii-batch")
    assert main(["batch", "--mode", "single", "--recording-id", "pii-batch"]) == 0
    out, err = capfd.readouterr()
    home = "".join(p.read_text(errors="ignore") for p in (tmp_path / "dagster").rglob("*") if p.is_file())
    conn = psycopg2.connect(pg_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT event FROM event_logs")
            db = "\n".join(row[0] for row in cur.fetchall())
            cur.execute("SELECT run_body FROM runs")
            db += "\n".join(row[0] for row in cur.fetchall())
    finally:
        conn.close()
    assert "pii-batch" in db  # the run really used this database
    for name, text in {
        "output": out + err,
        "dagster_home": home,
        "postgres": db,
        "store": _stored_text(mirrored),
    }.items():
        assert password not in text and mirrored["secret"] not in text, name
        if name != "store":
            assert not leaks(text), name


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("mi número es 6, 1, 2, 3, 4, 5, 6, 7, 8", "mi número es [PHONE]"),
        ("el 6, 12, 34, 56, 78 por favor", "el [PHONE] por favor"),
    ],
)
def test_digits_read_one_by_one_as_whisper_writes_them_are_redacted(said: str, expected: str) -> None:
    """Whisper writes digits read one at a time with commas between them ("6, 1, 2, ..."): the run
    is personal data all the same. Lists of larger numbers stay (years, amounts, counts)."""
    assert redact(said) == expected


def test_an_account_read_digit_by_digit_keeps_no_digit() -> None:
    redacted = redact("el IBAN es ES, 9, 1, 2, 1, 3, 0, 4, 1, 8, 2, 0, 0, 0, 5, 1, 3, 3, 2, 1, 0, 0")
    assert redacted.startswith("el IBAN es ES, [") and not any(c.isdigit() for c in redacted)


@pytest.mark.parametrize(
    "text",
    ["en 2024, 2025 subió", "me cobraron 100, 200 y 300 euros", "tengo 3, 4 hijos y pagué 89, 35 euros"],
)
def test_comma_lists_of_ordinary_numbers_are_kept(text: str) -> None:
    assert redact(text) == text
