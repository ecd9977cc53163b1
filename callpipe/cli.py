"""``callpipe`` command line: record, show, stats, sync, batch, reprocess, erase, retention and demo.

Results go to stdout as JSON; a user mistake (bad id, missing file, not audio, malformed
JSON, input past a limit) exits with code 2 and one line on stderr, never a traceback. A store
that cannot be reached (an S3 outage) exits with code 3: retry later.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from callpipe.audio_files import InvalidAudioError
from callpipe.limits import Limits
from callpipe.settings import Settings
from callpipe.storage import RecordingStore, StorageError, StorageUnavailableError, get_audio_storage
from callpipe.supervise import BatchInterrupted, stop_signals

EXIT_UNAVAILABLE = 3
"""Exit code of a command stopped by a store (S3) that cannot be reached: no user mistake, retry."""

_KNOWN_SUFFIXES = ("wav", "flac", "ogg", "mp3", "opus", "webm", "m4a")


class UserError(Exception):
    """A mistake in what the user asked for; reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line too (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        # Values are echoed raw ("unrecognized arguments: ..."): escape line breaks and controls.
        message = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in message)
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def _read_word_confidences(path: str | None) -> list[dict[str, Any]] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read word confidences file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise UserError(
            f"word confidences file {path} is not valid JSON: {exc.msg} (line {exc.lineno})"
        ) from exc
    if isinstance(data, dict):
        data = data.get("word_confidences")
    if not isinstance(data, list) or not all(isinstance(w, dict) for w in data):
        raise UserError(f"word confidences file {path} must hold a list of {{word, confidence}} objects")
    return data


MAX_TRANSCRIPT_BYTES = 1_000_000
"""Cap of a live transcript (UTF-8): about 150,000 words, far more than a day-long call."""


def _read_transcript(args: argparse.Namespace) -> str:
    """``--transcript``, or ``--transcript-file`` (``-`` = stdin, UTF-8), under the size cap."""
    if args.transcript_file is None:
        text = args.transcript or ""
        if len(text.encode("utf-8", "surrogatepass")) > MAX_TRANSCRIPT_BYTES:
            raise UserError(f"--transcript is over the {MAX_TRANSCRIPT_BYTES:,} byte limit")
        return text
    source = args.transcript_file
    name = "from stdin" if source == "-" else f"file {source}"
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_TRANSCRIPT_BYTES + 1)
        else:
            with open(source, "rb") as handle:
                raw = handle.read(MAX_TRANSCRIPT_BYTES + 1)
    except OSError as exc:
        raise UserError(f"cannot read transcript {name}: {exc.strerror}") from exc
    if len(raw) > MAX_TRANSCRIPT_BYTES:
        raise UserError(f"transcript {name} is over the {MAX_TRANSCRIPT_BYTES:,} byte limit")
    try:
        return raw.decode("utf-8").removeprefix("\ufeff").strip()
    except UnicodeDecodeError as exc:
        raise UserError(f"transcript {name} is not UTF-8 text (bad byte at offset {exc.start})") from None


def cmd_record(args: argparse.Namespace) -> int:
    from callpipe.recorder import InvalidConfidenceError, Recorder

    transcript = _read_transcript(args)
    confidences = _read_word_confidences(args.word_confidences)
    audio_path = Path(args.audio)
    limits = Limits.from_env()  # the same limits as the API's (CALLPIPE_MAX_UPLOAD_MB, ...)
    try:
        limits.check_upload_size(audio_path.stat().st_size)
        audio = audio_path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read audio file {audio_path}: {exc.strerror}") from exc
    # The bytes decide the format; the file name's suffix is only a hint for ambiguous containers.
    suffix = audio_path.suffix.lstrip(".").lower()
    extra = {"agent_id": args.agent_id} if args.agent_id else {}
    # The recorder logs a confidence mismatch; the command reports it once, naming the file.
    logging.getLogger("callpipe.recorder.recorder").setLevel(logging.ERROR)
    claim = _claim_idempotency_key(args, audio, transcript, confidences)
    if isinstance(claim, dict):  # a retry: the first result, nothing stored again
        _print_json(claim)
        return 0
    try:
        result = Recorder().record_sync(
            audio,
            args.conversation_id,
            transcription=transcript,
            word_confidences=confidences,
            direction=args.direction,
            audio_format=suffix if suffix in _KNOWN_SUFFIXES else "",
            extra=extra,
            caller_phone=args.caller_phone,
        )
    except InvalidConfidenceError as exc:
        if claim is not None:
            claim.release("cli", args.idempotency_key)
        raise UserError(f"word confidences file {args.word_confidences}: {exc}") from exc
    except BaseException:
        if claim is not None:
            claim.release("cli", args.idempotency_key)
        raise
    if claim is not None:
        claim.finish("cli", args.idempotency_key, result.to_dict())
    if args.word_confidences is None and transcript.strip():
        sys.stderr.write(
            "callpipe: note: no --word-confidences given: with unknown word confidences nothing is "
            "corrected online and no value is flagged for clarification (see docs/examples/words.json)\n"
        )
    warning = result.online.get("confidence_warning")
    if warning:
        sys.stderr.write(f"callpipe: warning: word confidences file {args.word_confidences}: {warning}\n")
    _print_json(result.to_dict())
    return 0


def _claim_idempotency_key(
    args: argparse.Namespace, audio: bytes, transcript: str, confidences: list[dict[str, Any]] | None
) -> Any:
    """None without ``--idempotency-key``; else the key's first result (a dict, ``replayed``) or
    the store that holds the claim (to finish or release). Another call under the key: exit 2."""
    if not args.idempotency_key:
        return None
    from callpipe.idempotency import IdempotencyConflict, claim_request, open_store

    fields = {"conversation_id": args.conversation_id, "transcript": transcript, "words": confidences}
    fields |= {"direction": args.direction, "agent_id": args.agent_id, "phone": args.caller_phone}
    keys = open_store()
    try:
        first = claim_request(keys, "cli", args.idempotency_key, audio, fields)
    except (ValueError, IdempotencyConflict) as exc:
        raise UserError(f"--idempotency-key: {exc}") from None
    return {**first, "replayed": True} if first is not None else keys


def cmd_show(args: argparse.Namespace) -> int:
    metadata = get_audio_storage().get_metadata(args.recording_id)
    sys.stdout.write(metadata.model_dump_json(indent=2) + "\n")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    _print_json(get_audio_storage().get_storage_stats())
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    """``callpipe catalog rebuild|recover``: the catalog from the documents, or interrupted saves."""
    store = get_audio_storage()
    if getattr(store, "catalog", None) is None:
        raise UserError("the catalog is off (CALLPIPE_CATALOG=off)")
    if args.action == "rebuild":
        from callpipe.catalog.rebuild import rebuild_catalog

        report = rebuild_catalog(store)  # type: ignore[arg-type]
        _print_json({"rows": report.rows, "errors": [path for path, _ in report.errors]})
        return 1 if report.errors else 0
    from callpipe.catalog.recover import recover_saves

    recovered = recover_saves(store, force=args.force)  # type: ignore[arg-type]
    _print_json(dataclasses.asdict(recovered))
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    store = get_audio_storage()
    sync = getattr(store, "sync_pending", None)
    if sync is None:
        raise UserError("sync needs STORAGE_BACKEND=both (local copy mirrored to S3)")
    report = sync()
    _print_json(dataclasses.asdict(report) if dataclasses.is_dataclass(report) else report)
    return 1 if getattr(report, "failed", None) else 0


def cmd_batch(args: argparse.Namespace) -> int:
    from callpipe import batch

    with stop_signals() as stop:  # SIGTERM / Ctrl-C: BatchInterrupted, handled in main()
        result = _batch(batch, args)
        stop.check("after its runs")
    _print_json(result)
    return 0 if all(run["success"] for run in result["runs"]) else 1


def _batch(batch: Any, args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "single":
        if not args.recording_id:
            raise UserError("--mode single needs --recording-id")
        return batch.single(args.recording_id, concurrent=args.concurrent)
    if args.mode == "unprocessed":
        return batch.unprocessed(limit=args.limit, concurrent=args.concurrent)
    if not args.start_date or not args.end_date:
        raise UserError("--mode date_range needs --start-date and --end-date")
    return batch.date_range(args.start_date, args.end_date, concurrent=args.concurrent)


def cmd_reprocess(args: argparse.Namespace) -> int:
    from callpipe.stage_runner import STAGE_ORDER

    unknown = sorted(set(args.stage or []) - set(STAGE_ORDER))
    if unknown:
        raise UserError(f"unknown stage {', '.join(unknown)}; stages are {', '.join(STAGE_ORDER)}")
    if bool(args.recording_id) == bool(args.since):
        raise UserError("give either RECORDING_ID or --since DATE")
    store = get_audio_storage()
    if args.recording_id:
        ids = [args.recording_id]
    else:
        since = datetime.combine(args.since, time(0), tzinfo=UTC)
        ids, cursor = [], None
        while True:
            page = store.list_recordings(since=since, limit=1000, cursor=cursor)
            ids += [ref.recording_id for ref in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    for recording_id in ids:
        store.request_reprocess(recording_id, args.stage)
    _print_json({"flagged": len(ids), "stages": args.stage or "all", "recording_ids": ids[:50]})
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from callpipe.demo_command import run_demo

    _print_json(run_demo())
    return 0


def cmd_categories(args: argparse.Namespace) -> int:
    from callpipe.analytics import open_analytics_store
    from callpipe.analytics.categorize import apply_category, load_categories
    from callpipe.categories import load_rules

    tables = open_analytics_store(store=get_audio_storage())
    try:  # a CategoryError (a ValueError) is one line on stderr, exit 2
        if args.action == "list":
            _print_json({"items": tables.categories()})
        elif args.action == "load":
            _print_json(load_categories(tables, load_rules(Path(args.target)), apply=not args.no_apply))
        else:
            _print_json(apply_category(tables, args.target))
    finally:
        tables.close()
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    from callpipe.erasure import erase, resume_erasures

    store = get_audio_storage()
    if args.resume:
        receipt = resume_erasures(store)
    else:
        receipt = erase(
            store,
            recording_id=args.recording_id,
            conversation_id=args.conversation_id,
            caller_phone=args.caller_phone,
        )
    result = receipt.to_dict()
    result["analytics"] = _erase_analytics_rows(store, [r.recording_id for r in receipt.recordings])
    result["complete"] = receipt.complete and not result["analytics"].get("rows_remain", True)
    _print_json(result)
    if result["complete"]:
        return 0
    if receipt.complete:
        sys.stderr.write("callpipe: erasure incomplete (analytics rows remain); run the same erase again\n")
        return 1
    first = next((r.error for r in receipt.recordings if r.error), None) or receipt.errors[0]
    sys.stderr.write(
        f"callpipe: erasure incomplete ({first.splitlines()[0]}); "
        "run `callpipe erase --resume` once the backend is reachable\n"
    )
    return 1


def _erase_analytics_rows(store: RecordingStore, recording_ids: list[str]) -> dict[str, Any]:
    """The erased calls leave the analytics tables now, not at their day's next run."""
    from callpipe.analytics import remaining_recordings, remove_recordings

    try:
        removed = remove_recordings(store, recording_ids)
        return {
            "recordings_with_rows_removed": removed,
            "rows_remain": remaining_recordings(store, recording_ids),
        }
    except Exception as exc:  # the erasure itself stands: say what is left
        sys.stderr.write(f"callpipe: analytics rows of the erased calls not removed ({type(exc).__name__})\n")
        return {"recordings_with_rows_removed": 0, "error": "analytics tables unavailable; rows remain"}


def cmd_retention(args: argparse.Namespace) -> int:
    from callpipe.retention import apply_retention, retention_days

    days = args.days or retention_days()
    if days is None:
        raise UserError("give --days N or set RETENTION_DAYS (unset keeps audio forever)")
    report = apply_retention(get_audio_storage(), days, dry_run=args.dry_run)
    _print_json(report.to_dict())
    return 1 if report.failed else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from callpipe.service import ServiceConfigError, serve

    if args.demo:  # the demo's store, instance and PII key file, as `callpipe demo` uses them
        from callpipe.demo_command import apply_defaults

        apply_defaults()
    try:
        serve(args.host, args.port, demo=args.demo)
    except ServiceConfigError as exc:
        raise UserError(str(exc)) from None
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="callpipe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    record = sub.add_parser("record", help="save a call: online correction, audio and metadata")
    record.add_argument("audio", help="audio file (wav, flac, ogg, mp3)")
    record.add_argument("--conversation-id", required=True)
    text = record.add_mutually_exclusive_group()
    text.add_argument("--transcript", help="live transcript text")
    text.add_argument(
        "--transcript-file",
        metavar="PATH",
        help=f"live transcript from a UTF-8 file, '-' for stdin (at most {MAX_TRANSCRIPT_BYTES:,} bytes)",
    )
    record.add_argument(
        "--word-confidences",
        metavar="FILE.json",
        help="JSON list of {word, confidence[, start, end]} aligned with the transcript",
    )
    record.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a retry with the same key prints the first result and stores nothing new (same key, "
        "other call: exit 2); kept 24 h in CALLPIPE_STATE_DIR (default: state/ beside the store)",
    )
    record.add_argument("--direction", choices=["inbound", "outbound"], default="inbound")
    record.add_argument("--agent-id")
    record.add_argument(
        "--caller-phone",
        metavar="NUMBER",
        help="caller's phone (+34... or a Spanish number); stored masked and keyed (PII_REDACTION)",
    )
    record.set_defaults(func=cmd_record)

    show = sub.add_parser("show", help="print a recording's metadata JSON")
    show.add_argument("recording_id")
    show.set_defaults(func=cmd_show)

    sub.add_parser("stats", help="store statistics and processed/pending counts").set_defaults(func=cmd_stats)
    catalog = sub.add_parser("catalog", help="catalog of recordings: rebuild, or finish interrupted saves")
    catalog.add_argument("action", choices=["rebuild", "recover"])
    catalog.add_argument("--force", action="store_true", help="recover: also saves claimed on other hosts")
    catalog.set_defaults(func=cmd_catalog)
    sub.add_parser("sync", help="upload recordings kept locally during an S3 outage").set_defaults(
        func=cmd_sync
    )
    batch = sub.add_parser("batch", help="run the offline Dagster graph on the configured instance")
    batch.add_argument("--mode", choices=["single", "unprocessed", "date_range"], required=True)
    batch.add_argument("--recording-id")
    batch.add_argument("--limit", type=_positive_int, help="at most N recordings (unprocessed mode)")
    batch.add_argument("--concurrent", type=_positive_int, help="recordings processed at once per stage")
    batch.add_argument("--start-date", type=_date, metavar="YYYY-MM-DD")
    batch.add_argument("--end-date", type=_date, metavar="YYYY-MM-DD")
    batch.set_defaults(func=cmd_batch)

    reprocess = sub.add_parser("reprocess", help="queue processed recordings for offline work again")
    reprocess.add_argument("recording_id", nargs="?")
    reprocess.add_argument(
        "--since", type=_date, metavar="YYYY-MM-DD", help="every recording from this date on"
    )
    reprocess.add_argument("--stage", action="append", help="only this stage (repeatable); default: all")
    reprocess.set_defaults(func=cmd_reprocess)

    erase = sub.add_parser(
        "erase", help="erase recordings (audio, metadata, transcripts) everywhere; prints a receipt"
    )
    target = erase.add_mutually_exclusive_group(required=True)
    target.add_argument("--recording-id")
    target.add_argument("--conversation-id")
    target.add_argument("--caller-phone", metavar="NUMBER", help="+34... or a Spanish number")
    target.add_argument("--resume", action="store_true", help="finish erasures a backend outage left")
    erase.set_defaults(func=cmd_erase)

    retention = sub.add_parser(
        "retention", help="delete audio older than N days, keeping de-identified analytics"
    )
    retention.add_argument("--days", type=_positive_int, help="default: RETENTION_DAYS")
    retention.add_argument("--dry-run", action="store_true", help="only report what would be retained")
    retention.set_defaults(func=cmd_retention)

    sub.add_parser("demo", help="main job on the bundled demo calls (local store, SQLite)").set_defaults(
        func=cmd_demo
    )

    categories = sub.add_parser("categories", help="analysts' categories: list, load a YAML file, apply")
    categories.add_argument("action", choices=("list", "load", "apply"))
    categories.add_argument("target", nargs="?", default="", help="load: a YAML file; apply: a name")
    categories.add_argument("--no-apply", action="store_true", help="load: store only")
    categories.set_defaults(func=cmd_categories)

    serve = sub.add_parser("serve", help="HTTP API and analyst web UI (FastAPI on uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    serve.add_argument("--port", type=_positive_int, default=8000)
    serve.add_argument(
        "--demo", action="store_true", help="without CALLPIPE_API_KEYS: a random key, printed once"
    )
    serve.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    try:
        Settings.from_env()  # every setting checked when the command starts: a bad one is one line, exit 2
        return int(args.func(args))
    except BatchInterrupted as exc:
        # Its line is on stderr. A run's worker thread may still be inside a step: leave at once;
        # its leases and pool slots are already given back and the run is marked canceled.
        sys.stdout.flush()
        os._exit(exc.exit_code)
    except StorageUnavailableError as exc:
        sys.stderr.write(f"callpipe: error: store unavailable, nothing was lost; retry: {_one_line(exc)}\n")
        return EXIT_UNAVAILABLE
    except (UserError, StorageError, InvalidAudioError, ValueError, OSError) as exc:
        # OSError: a store path that cannot be used (STORAGE_LOCAL_PATH under a file, on /proc...)
        sys.stderr.write(f"callpipe: error: {_one_line(exc)}\n")
        return 2


def _one_line(exc: Exception) -> str:
    """The error message on one line; pydantic's (a ValueError) as ``invalid Model: field: msg``."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid {exc.title}: {where + ': ' if where else ''}{first['msg']}".splitlines()[0]
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
