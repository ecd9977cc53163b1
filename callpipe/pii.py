"""Personal data in recordings: redacted transcripts and the caller's phone number.

``PII_REDACTION`` (``mask`` by default, ``drop`` or ``off``) decides what the metadata, the
transcript files and Dagster's UI keep:

- ``off``: as before this module existed: raw text, raw entity values; the caller's raw phone
  number is kept in ``caller.phone`` (with its masked form and key). No redacted text is made.
- ``mask``: the original transcript stays in the metadata and its ``.txt`` file; the redacted
  text goes beside it (``transcription.redacted_text`` and a ``.redacted.txt`` file). Entity
  values of emails, phones, accounts, cards and national ids are masked (last 4 kept), the
  caller's phone is kept only masked and as an HMAC key.
- ``drop``: every transcript text (text, corrected text, words, corrections, the live
  transcript, turns, string values of ``extra``) is replaced by its redacted form, entity values
  become their type tag, and the ``.txt`` file holds the redacted transcript (nothing raw remains).

Logs, exception messages and Dagster metadata carry ids, counts and redacted text only, whatever
the mode (:func:`safe_message`).

Redaction replaces emails, phones, IBAN/CCC and card numbers, DNI/NIE with ``[EMAIL]``,
``[PHONE]``, ``[IBAN]``, ``[ACCOUNT]``, ``[CARD]``, ``[DNI]``, ``[NIE]``: first the validated
entities of :func:`callpipe.analysis.entities.extract_entities` (written and spoken forms), then
fallbacks that need no valid check digits: any run of 7 or more digits, written or spoken
(``[NUMBER]`` unless its shape names a type), written email- and IBAN-shaped strings, and the
words around an unparsed "arroba". Person names are not redacted. Importing this module loads no
model (the online recorder uses it).

Phone keys: :func:`phone_key` is the HMAC-SHA256 of the E.164 number under a secret key, so a
caller can be found (and erased) by number without storing it. A plain SHA-256 of a phone number
is not anonymous: Spain has under 10^9 numbers, a laptop hashes them all in minutes. The key
comes from ``CALLPIPE_PII_KEY`` (at least 16 characters; set the same value on every machine in
production), else from the file named by ``CALLPIPE_PII_KEY_FILE`` (an absolute path, so that
every process finds the same file wherever it starts), created with 32 random bytes and mode 0600
on first use. With neither set, making or looking up a phone key is a :class:`PIIConfigError`: a
key made silently in the working directory would not match the keys stored by a process started
elsewhere, and ``erase --caller-phone`` would miss calls. ``callpipe demo`` sets the key file to
``data/pii.key`` beside its store (as an absolute path).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import phonenumbers

from callpipe.schema import (
    CallerInfo,
    Entities,
    RecordingMetadata,
    Transcription,
    TurnRedaction,
    WordConfidence,
)

MODE_ENV = "PII_REDACTION"
KEY_ENV = "CALLPIPE_PII_KEY"
KEY_FILE_ENV = "CALLPIPE_PII_KEY_FILE"
DEMO_KEY_FILE = "data/pii.key"
"""Where ``callpipe demo`` keeps its key (resolved to an absolute path when the demo starts)."""
MIN_KEY_CHARS = 16


class PIIConfigError(ValueError):
    """``PII_REDACTION`` or the PII key is misconfigured (the message never holds the key)."""


class RedactionMode(StrEnum):
    """What personal data the stored documents keep (see the module docstring)."""

    MASK = "mask"
    DROP = "drop"
    OFF = "off"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RedactionMode:
        """The mode named by ``PII_REDACTION`` (``mask`` when unset or empty)."""
        env = os.environ if environ is None else environ
        value = (env.get(MODE_ENV) or "mask").strip().lower()
        try:
            return cls(value)
        except ValueError:
            raise PIIConfigError(f"{MODE_ENV}={value!r}: expected mask, drop or off") from None


# ---- caller phone ---------------------------------------------------------------------------------


def normalize_phone(raw: str, region: str = "ES") -> str:
    """``raw`` as an E.164 number ("612 34 56 78" -> "+34612345678"); ValueError when it is none."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("caller phone is empty")
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValueError("caller phone is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"caller phone is not a valid number for region {region} (give +<country code>)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """Display form with the country code, first and last two digits: "+34 6** ** ** 78"."""
    parsed = phonenumbers.parse(e164, None)
    shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    code = f"+{parsed.country_code}"
    national = list(shown[len(code) :])
    positions = [i for i, c in enumerate(national) if c.isdigit()]
    for i in positions[1:-2]:
        national[i] = "*"
    return code + "".join(national)


_KEYS: dict[str, bytes] = {}
_KEY_LOCK = threading.Lock()


def pii_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The secret of :func:`phone_key`: ``CALLPIPE_PII_KEY``, else the key file (made on first use).

    Raises :class:`PIIConfigError` when neither is set or the file's path is relative.
    """
    env = os.environ if environ is None else environ
    configured = env.get(KEY_ENV)
    if configured:
        if len(configured) < MIN_KEY_CHARS:
            raise PIIConfigError(f"{KEY_ENV} must be at least {MIN_KEY_CHARS} characters")
        return configured.encode("utf-8")
    named = env.get(KEY_FILE_ENV)
    if not named:
        demo = Path(DEMO_KEY_FILE).resolve()
        hint = (
            f"; `make demo` made {demo}: export {KEY_FILE_ENV}={demo}"
            if demo.is_file()
            else f"; for a try-out: export {KEY_FILE_ENV}=$PWD/{DEMO_KEY_FILE} (made on first use)"
        )
        raise PIIConfigError(
            f"{KEY_ENV} is not set: set it to the same secret of {MIN_KEY_CHARS}+ characters on every "
            f"machine (or {KEY_FILE_ENV} to an absolute path) to store or find callers' phone keys{hint}"
        )
    path = Path(named).expanduser()
    if not path.is_absolute():
        raise PIIConfigError(
            f"{KEY_FILE_ENV}={named!r} is relative: give an absolute path (a relative one names a "
            "different file in each working directory)"
        )
    path = path.resolve()
    with _KEY_LOCK:
        if str(path) not in _KEYS:
            _KEYS[str(path)] = _load_or_create_key(path)
        return _KEYS[str(path)]


def _load_or_create_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and never replaces a key another process made first
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise PIIConfigError(f"cannot read PII key file {path}: {exc.strerror}") from None
    if len(key) < MIN_KEY_CHARS:
        raise PIIConfigError(f"PII key file {path} holds fewer than {MIN_KEY_CHARS} characters")
    return key


def phone_key(phone: str, region: str = "ES") -> str:
    """HMAC-SHA256 (hex) of the number's E.164 form under :func:`pii_key`: a stable lookup key."""
    e164 = normalize_phone(phone, region)
    return hmac.new(pii_key(), e164.encode(), hashlib.sha256).hexdigest()


def caller_info(raw_phone: str | None, mode: RedactionMode | None = None, region: str = "ES") -> CallerInfo:
    """What the metadata keeps of the caller's number; an empty :class:`CallerInfo` for None."""
    if raw_phone is None:
        return CallerInfo()
    mode = mode or RedactionMode.from_env()
    e164 = normalize_phone(raw_phone, region)
    return CallerInfo(
        phone=e164 if mode is RedactionMode.OFF else None,
        phone_masked=mask_phone(e164),
        phone_key=phone_key(e164),
    )


# ---- finding personal data in text ----------------------------------------------------------------

_ENTITY_FIELDS = ("emails", "phone_numbers", "account_numbers", "national_ids")
_TAGS = {
    "email": "EMAIL",
    "phone": "PHONE",
    "iban": "IBAN",
    "ccc": "ACCOUNT",
    "card": "CARD",
    "dni": "DNI",
    "nie": "NIE",
}
_EMAIL_RE = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")
_IBAN_RE = re.compile(r"\b[A-Za-z]{2}\s?[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[0-9]{1,4})?\b")
_GLUE = {"-", ".", "eh", "em", "mm"}
_LIST_COMMA = ","
"""Whisper writes digits read one by one as "6, 1, 2, ...": a comma joins groups of one or two digits."""
_JOINERS = {"punto", "guion", "bajo", ".", "-", "_"}
MIN_DIGITS = 7
"""Runs of this many digits (written or spoken) are redacted even when no entity validates."""

Span = tuple[int, int, str]


def find_pii(text: str, entities: Entities | None = None) -> list[Span]:
    """``(start, end, TAG)`` of each piece of personal data in ``text``, sorted, not overlapping.

    ``entities`` must have been extracted from this very ``text``; by default they are
    extracted here (without the spaCy pass).
    """
    if not text:
        return []
    if entities is None:
        from callpipe.analysis.entities import extract_entities

        entities = extract_entities(text, names=False)
    spans: list[Span] = []
    for field in _ENTITY_FIELDS:
        for entity in getattr(entities, field):
            start, end = entity.start, entity.end
            if start is not None and end is not None and 0 <= start < end <= len(text):
                spans.append((start, end, _TAGS.get(entity.kind, "NUMBER")))
    keep = [(e.start, e.end) for e in [*entities.amounts, *entities.dates] if e.start is not None and e.end]
    fallback = [(m.start(), m.end(), "EMAIL") for m in _EMAIL_RE.finditer(text)]
    fallback += [(m.start(), m.end(), "IBAN") for m in _IBAN_RE.finditer(text) if _digits(m.group()) >= 10]
    fallback += _digit_runs(text)
    spans += [s for s in fallback if not any(s[0] < b and a < s[1] for a, b in keep)]
    spans += _spoken_email_remains(text, spans)
    return _merge(spans)


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def _number_tag(digits: str, plus: bool) -> str:
    n = len(digits)
    if plus or (n == 9 and digits[0] in "6789") or (n == 11 and digits.startswith("34")):
        return "PHONE"
    if 13 <= n <= 19:
        return "CARD"
    return "ACCOUNT" if n >= 20 else "NUMBER"


def _digit_runs(text: str) -> list[Span]:
    """Runs of at least :data:`MIN_DIGITS` digits, written ("612 345 678") or said ("seis uno
    dos ..."), with a DNI/NIE letter next to them when there is one."""
    from callpipe.analysis.spoken import parse_letter, read_digit_group, tokenize

    tokens = tokenize(text)
    norms = [t.norm for t in tokens]
    out: list[Span] = []
    i = 0
    while i < len(norms):
        digits, j, last, previous = "", i, i, ""
        while j < len(norms):
            group = read_digit_group(norms, j)
            if group:
                digits, j, previous = digits + group[0], group[1], group[0]
                last = j
            elif digits and _joins(norms, j, previous):
                j += 1
            else:
                break
        if len(digits) < MIN_DIGITS:
            i = max(i + 1, last)
            continue
        start, end = i, last
        plus = i > 0 and norms[i - 1] in {"+", "mas"}
        start -= plus
        tag = _number_tag(digits, plus)
        letter = parse_letter(norms, last)
        if len(digits) in (7, 8) and letter:
            before = parse_letter(norms, i - 1) if i > 0 and len(digits) == 7 else None
            tag = "NIE" if before and before[0] in "XYZ" else "DNI"
            start, end = (i - 1 if tag == "NIE" else i), letter[1]
        out.append((tokens[start].start, tokens[end - 1].end, tag))
        i = end
    return out


def _joins(norms: list[str], index: int, previous: str) -> bool:
    """Whether the token at ``index`` joins the digit group before it (``previous``) to the next:
    a filler or separator, or a comma between groups of one or two digits (read one by one)."""
    from callpipe.analysis.spoken import read_digit_group

    following = read_digit_group(norms, index + 1)
    if not following:
        return False
    if norms[index] in _GLUE:
        return True
    return norms[index] == _LIST_COMMA and len(previous) <= 2 and len(following[0]) <= 2


def _spoken_email_remains(text: str, spans: list[Span]) -> list[Span]:
    """An "arroba" outside every span: the word before it and the domain words after it."""
    from callpipe.analysis.spoken import tokenize

    tokens = tokenize(text)
    norms = [t.norm for t in tokens]
    out: list[Span] = []
    for k, norm in enumerate(norms):
        if norm not in {"arroba", "aroba", "@"} or any(a <= tokens[k].start < b for a, b, _ in spans):
            continue
        first = max(0, k - 1)
        while first >= 2 and norms[first - 1] in _JOINERS:
            first -= 2
        last = min(len(norms), k + 2)
        while last + 1 < len(norms) and norms[last] in _JOINERS:
            last += 2
        out.append((tokens[first].start, tokens[last - 1].end, "EMAIL"))
    return out


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end, tag in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and start < merged[-1][1]:
            s, e, t = merged[-1]
            merged[-1] = (s, max(e, end), t if t != "NUMBER" else tag)
        else:
            merged.append((start, end, tag))
    return merged


_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
"""Zero-width and bidirectional-control characters: they change nothing a reader sees, but placed
between digits they would hide a phone number or an IBAN from the patterns, so they are removed."""


def visible(text: str) -> str:
    """``text`` without zero-width and bidirectional-control characters."""
    return _INVISIBLE.sub("", text)


def redact(text: str, entities: Entities | None = None) -> str:
    """``text`` with each piece of personal data replaced by its tag ("[IBAN]", "[PHONE]" ...).

    Zero-width and bidirectional-control characters are removed first (``entities``, whose offsets
    refer to the text as it was, are then extracted again).
    """
    if not text:
        return text
    clean = visible(text)
    if clean != text:
        text, entities = clean, None
    out = text
    for start, end, tag in reversed(find_pii(text, entities)):
        out = out[:start] + f"[{tag}]" + out[end:]
    return out


REDACTION_VERSION = "1"
"""Bump when :func:`find_pii` finds more: every stored :class:`TurnRedaction` is then redone."""


def turns_fingerprint(texts: list[str]) -> str:
    """SHA-256 (hex) of the redaction rules' version and ``texts`` in order."""
    digest = hashlib.sha256(REDACTION_VERSION.encode())
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def redact_turns(texts: list[str]) -> TurnRedaction:
    """Each turn redacted (:func:`redact`), as the document keeps it: the changed turns only."""
    changed = {}
    for index, text in enumerate(texts):
        redacted = redact(text)
        if redacted != text:
            changed[index] = redacted
    return TurnRedaction(fingerprint=turns_fingerprint(texts), changed=changed)


def redacted_turn_texts(meta: RecordingMetadata) -> list[str]:
    """The turns' texts redacted: from ``meta.turn_redaction`` when its fingerprint matches the
    turns as they are now, else redacted here (older documents, turns edited since)."""
    texts = [turn.text for turn in meta.turns]
    done = meta.turn_redaction
    if done is None or done.fingerprint != turns_fingerprint(texts):
        return [redact(text) for text in texts]
    return [done.changed.get(index, text) for index, text in enumerate(texts)]


def safe_message(message: str) -> str:
    """A log line or error message with personal data redacted (whatever ``PII_REDACTION`` says)."""
    return redact(message) if message else message


# ---- documents ----------------------------------------------------------------------------------


def mask_value(kind: str, value: str) -> str:
    """An entity value masked for display: the last 4 characters kept ("ES**...1332")."""
    if kind == "email" and "@" in value:
        local, domain = value.split("@", 1)
        return f"{local[:1]}***@{domain}"
    if kind == "phone":
        try:
            return mask_phone(value)
        except phonenumbers.NumberParseException:
            pass
    if kind == "card":
        return "**** **** **** " + value[-4:]
    lead = value[:2] if kind == "iban" else ""
    return lead + "*" * max(0, len(value) - len(lead) - 4) + value[-4:]


def _hide_entities(entities: Entities, mode: RedactionMode) -> None:
    for field in _ENTITY_FIELDS:
        hidden = []
        for entity in getattr(entities, field):
            if mode is RedactionMode.DROP:
                shown = f"[{_TAGS.get(entity.kind, 'NUMBER')}]"
                hidden.append(entity.model_copy(update={"text": shown, "value": shown}))
            elif "*" not in entity.value and not entity.value.startswith("["):
                shown = mask_value(entity.kind, entity.value)
                hidden.append(entity.model_copy(update={"text": shown, "value": shown}))
            else:
                hidden.append(entity)
        setattr(entities, field, hidden)


def _redact_words(words: list[WordConfidence]) -> list[WordConfidence]:
    """Each word inside a piece of personal data becomes its tag (timings and confidences kept)."""
    if not words:
        return words
    words = [
        w.model_copy(update={"word": visible(w.word)}) if _INVISIBLE.search(w.word) else w for w in words
    ]
    starts, pos = [], 0
    for w in words:
        starts.append(pos)
        pos += len(w.word) + 1
    spans = find_pii(" ".join(w.word for w in words))
    out = []
    for w, start in zip(words, starts, strict=True):
        tag = next((t for a, b, t in spans if a < start + len(w.word) and start < b), None)
        out.append(w.model_copy(update={"word": f"[{tag}]"}) if tag else w)
    return out


def _drop_transcription(t: Transcription) -> Transcription:
    text = redact(t.text)
    corrected = redact(t.corrected_text) if t.corrected_text else t.corrected_text
    corrections = [
        c.model_copy(update={"original": redact(c.original), "corrected": redact(c.corrected)})
        for c in t.corrections_made
    ]
    return t.model_copy(
        update={
            "text": text,
            "corrected_text": corrected,
            "redacted_text": corrected or text,
            "word_confidences": _redact_words(t.word_confidences),
            "corrections_made": corrections,
            "clarification_reason": redact(t.clarification_reason) if t.clarification_reason else None,
        }
    )


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """``value`` (JSON-like: dicts, lists, scalars) with ``fn`` applied to every string in it."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    return value


def apply_redaction(meta: RecordingMetadata, mode: RedactionMode | None = None) -> RecordingMetadata:
    """Make ``meta`` honour ``mode`` (default from the environment), in place; returns ``meta``.

    Idempotent: applying it twice gives the same document.
    """
    mode = mode or RedactionMode.from_env()
    if mode is RedactionMode.OFF:
        return meta
    if meta.caller.phone:
        meta.caller = caller_info(meta.caller.phone, mode)
    if meta.entities is not None:
        _hide_entities(meta.entities, mode)
    if mode is RedactionMode.MASK:
        t = meta.transcription
        t.redacted_text = redact(t.corrected_text or t.text)
        meta.turn_redaction = redact_turns([turn.text for turn in meta.turns]) if meta.turns else None
        return meta
    meta.transcription = _drop_transcription(meta.transcription)
    if meta.online_transcription is not None:
        meta.online_transcription = _drop_transcription(meta.online_transcription)
    meta.turns = [turn.model_copy(update={"text": redact(turn.text)}) for turn in meta.turns]
    meta.turn_redaction = None
    meta.extra = map_strings(meta.extra, redact)
    return meta
