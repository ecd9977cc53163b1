"""``callpipe`` command line: record, show, stats, sync and the demo main job.

Results go to stdout as JSON; a user mistake (bad id, missing file, not audio, malformed
JSON) exits with code 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from callpipe.audio import InvalidAudioError
from callpipe.storage import StorageError, get_audio_storage


class UserError(Exception):
    """A mistake in what the user asked for; reported in one line, exit code 2."""


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
        raise UserError(f"word confidences file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if isinstance(data, dict):
        data = data.get("word_confidences")
    if not isinstance(data, list) or not all(isinstance(w, dict) for w in data):
        raise UserError(f"word confidences file {path} must hold a list of {{word, confidence}} objects")
    return data


def cmd_record(args: argparse.Namespace) -> int:
    from callpipe.recorder import Recorder

    audio_path = Path(args.audio)
    try:
        audio = audio_path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read audio file {audio_path}: {exc.strerror}") from exc
    extra = {"agent_id": args.agent_id} if args.agent_id else {}
    result = Recorder().record_sync(
        audio,
        args.conversation_id,
        transcription=args.transcript or "",
        word_confidences=_read_word_confidences(args.word_confidences),
        direction=args.direction,
        audio_format=audio_path.suffix.lstrip(".").lower() or "wav",
        extra=extra,
    )
    _print_json(result.to_dict())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    metadata = get_audio_storage().get_metadata(args.recording_id)
    sys.stdout.write(metadata.model_dump_json(indent=2) + "\n")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    _print_json(get_audio_storage().get_storage_stats())
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    store = get_audio_storage()
    sync = getattr(store, "sync_pending", None)
    if sync is None:
        raise UserError("sync needs STORAGE_BACKEND=both (local copy mirrored to S3)")
    report = sync()
    _print_json(report.model_dump(mode="json") if hasattr(report, "model_dump") else report)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from callpipe.demo_job import run_demo

    _print_json(run_demo())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callpipe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    record = sub.add_parser("record", help="save a call: online correction, audio and metadata")
    record.add_argument("audio", help="audio file (wav, flac, ogg, mp3)")
    record.add_argument("--conversation-id", required=True)
    record.add_argument("--transcript", help="live transcript text")
    record.add_argument("--word-confidences", metavar="FILE.json",
                        help="JSON list of {word, confidence[, start, end]} aligned with the transcript")
    record.add_argument("--direction", choices=["inbound", "outbound"], default="inbound")
    record.add_argument("--agent-id")
    record.set_defaults(func=cmd_record)

    show = sub.add_parser("show", help="print a recording's metadata JSON")
    show.add_argument("recording_id")
    show.set_defaults(func=cmd_show)

    sub.add_parser("stats", help="store statistics and processed/pending counts").set_defaults(func=cmd_stats)
    sub.add_parser("sync", help="upload recordings kept locally during an S3 outage").set_defaults(
        func=cmd_sync)
    sub.add_parser("demo", help="main job on the bundled demo calls (local store, SQLite)").set_defaults(
        func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (UserError, StorageError, InvalidAudioError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"callpipe: error: {message}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
