"""The confusion dictionary: shipped data, file format, env extension, context matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wordfreq import zipf_frequency

from callpipe.recorder import (
    ENV_FILE,
    ConfusionDictionary,
    ConfusionEntry,
    ConfusionFileError,
    fold,
    load_confusions_file,
    tokenize,
)
from callpipe.recorder.dictionary import parse_confusions

DATA = Path(__file__).resolve().parents[2] / "callpipe" / "data"


@pytest.fixture(scope="module")
def shipped() -> ConfusionDictionary:
    with pytest.MonkeyPatch.context() as env:
        env.delenv(ENV_FILE, raising=False)
        return ConfusionDictionary.load_default()


@pytest.fixture(autouse=True)
def _no_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FILE, raising=False)


def test_shipped_dictionary_is_large_and_valid(shipped: ConfusionDictionary) -> None:
    assert len(shipped) >= 300
    for entry in shipped.entries:
        assert entry.right.lower() != entry.wrong.lower(), entry.origin
        for word in entry.right.split():
            assert zipf_frequency(word.lower(), "es") > 0, f"{entry.origin}: {word!r} is not Spanish"
        assert entry.source in ("curated", "mined")


def test_shipped_dictionary_covers_domains_and_multiword(shipped: ConfusionDictionary) -> None:
    domains = {e.domain for e in shipped.entries}
    assert {"banking", "telecom", "utilities"} <= domains
    wrongs = {e.wrong for e in shipped.entries}
    assert {"tarjeta de credito", "a domiciliación", "salgo", "cuesta"} <= wrongs


def test_mined_entries_match_the_mining_report(shipped: ConfusionDictionary) -> None:
    report: dict[tuple[str, str], int] = {}
    lines = (DATA / "confusions_mined.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# mined by scripts/mine_confusions.py")
    for line in lines[2:]:
        wrong, right, count = line.split("\t")[:3]
        report[(wrong, right)] = int(count)
    mined = [e for e in shipped.entries if e.source == "mined"]
    assert len(mined) >= 50
    for entry in mined:
        assert entry.count is not None and entry.count >= 1
        if entry.note is None:  # entries with a note say how they differ from the raw pair
            assert report[(entry.wrong, entry.right.lower())] == entry.count, entry.origin


def test_shipped_file_header_says_how_it_was_built() -> None:
    lines = (DATA / "confusions_es.jsonl").read_text(encoding="utf-8").splitlines()
    header = "\n".join(line for line in lines if line.startswith("#"))
    assert "curated" in header and "mine_confusions.py" in header
    meta = next(json.loads(line)["meta"] for line in lines if line.startswith('{"meta"'))
    assert meta["entries"] == sum(1 for line in lines if line.startswith('{"wrong"'))


def test_tokenizer_splits_spanish_punctuation() -> None:
    tokens = tokenize("¿Cuánto  cuesta? «Vale», ¡SALDO! -")
    assert [t.text for t in tokens] == ["¿Cuánto", "cuesta?", "«Vale»,", "¡SALDO!", "-"]
    assert (tokens[0].lead, tokens[0].core, tokens[0].trail) == ("¿", "Cuánto", "")
    assert (tokens[1].core, tokens[1].trail) == ("cuesta", "?")
    assert (tokens[2].lead, tokens[2].core, tokens[2].trail) == ("«", "Vale", "»,")
    assert tokens[0].norm == "cuánto" and tokens[0].fold == "cuanto"
    assert tokens[3].norm == "saldo"
    assert tokens[4].core == ""
    assert tokenize("") == []
    assert fold("Cañón ÚLTIMO") == "cañon ultimo"


def _dictionary(*lines: str) -> ConfusionDictionary:
    return ConfusionDictionary(parse_confusions("\n".join(lines), "test.jsonl"))


SALGO = json.dumps(
    {
        "wrong": "salgo",
        "right": "saldo",
        "before": ["el", "mi"],
        "after": ["de la cuenta"],
        "near": ["consultar"],
        "veto": ["salgo de casa", "me salgo"],
    }
)


def test_context_cues_and_vetoes() -> None:
    d = _dictionary(SALGO)

    def fix(text: str, index: int) -> dict | None:
        fixes = d.fixes_at(tokenize(text), index)
        return fixes[0].evidence if fixes else None

    assert fix("revisar el salgo ahora", 2) == {
        "rule": "salgo -> saldo",
        "source": "curated",
        "cue": "el",
        "side": "before",
    }
    assert fix("ver salgo de la cuenta", 1)["side"] == "after"
    assert fix("quiero consultar ahora salgo", 3)["cue"] == "consultar"
    assert fix("el lunes salgo pronto", 2) is None  # "el" is not adjacent: no support
    assert fix("el salgo de casa", 1) is None  # veto
    assert fix("consultar: me salgo", 2) is None  # veto
    assert fix("Quiero CONSULTAR el Salgo", 3)["cue"] == "el"  # case-insensitive
    assert d.fixes_at(tokenize("el saldo"), 1) == []


def test_multiword_entries_need_clean_spans() -> None:
    d = _dictionary('{"wrong": "tarjeta de credito", "right": "tarjeta de crédito", "context_free": true}')
    tokens = tokenize("mi tarjeta de credito no va")
    fixes = d.find_fixes(tokens)
    assert [(f.start, f.end, f.entry.right) for f in fixes] == [(1, 4, "tarjeta de crédito")]
    assert d.find_fixes(tokenize("la tarjeta, de credito")) == []


def test_longest_entry_is_tried_first() -> None:
    d = _dictionary(
        '{"wrong": "haber", "right": "a ver", "after": ["cómo"]}',
        '{"wrong": "haber si", "right": "a ver si", "context_free": true}',
    )
    assert [e.wrong for e in d.entries_for("HABER")] == ["haber si", "haber"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"wrong": "salgo", "right": "saldo", "before": ["el"]', "invalid JSON"),
        ('["salgo", "saldo"]', "expected a JSON object"),
        ('{"wrong": "salgo", "before": ["el"]}', "'right' must be a non-empty string"),
        ('{"wrong": "salgo", "right": "Salgo", "before": ["el"]}', "are the same"),
        ('{"wrong": "salgo", "right": "saldo"}', "no context cues"),
        ('{"wrong": "salgo", "right": "saldo", "before": "el"}', "'before' must be a list"),
        ('{"wrong": "salgo", "right": "saldo", "befor": ["el"]}', "unknown field"),
        ('{"wrong": "salgo", "right": "saldo", "near": ["x"], "threshold": 1.5}', "'threshold'"),
        ('{"wrong": "salgo", "right": "saldo", "near": ["x"], "window": 0}', "'window'"),
        ('{"wrong": "salgo", "right": "saldo", "near": ["x"], "source": "mined"}', "need a 'count'"),
        ('{"wrong": "salgo", "right": "saldo", "near": ["x"], "source": "web"}', "'source'"),
    ],
)
def test_malformed_lines_name_file_and_line(line: str, message: str) -> None:
    text = "# comment\n" + SALGO + "\n\n" + line + "\n"
    with pytest.raises(ConfusionFileError, match=message) as info:
        parse_confusions(text, "extra.jsonl")
    assert str(info.value).startswith("extra.jsonl line 4: ")


def test_env_file_extends_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "mine.jsonl"
    extra.write_text(
        '{"meta": {"by": "test"}}\n'
        '{"wrong": "zarjeta", "right": "tarjeta", "context_free": true, "domain": "banking"}\n'
        '{"wrong": "salgo", "right": "saldo", "before": ["nuestro"], "threshold": 0.4}\n',
        encoding="utf-8",
    )
    base = ConfusionDictionary.load_default()
    monkeypatch.setenv(ENV_FILE, str(extra))
    merged = ConfusionDictionary.load_default()
    assert len(merged) == len(base) + 1
    (new,) = merged.entries_for("zarjeta")
    assert new.right == "tarjeta" and new.origin == f"{extra} line 2"
    salgo = [e for e in merged.entries_for("salgo") if e.right == "saldo"]
    assert len(salgo) == 1 and salgo[0].before == ("nuestro",) and salgo[0].threshold == 0.4


def test_env_file_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"wrong": "zarjeta", "right": "tarjeta", "context_free": true}\n{oops\n', encoding="utf-8"
    )
    monkeypatch.setenv(ENV_FILE, str(bad))
    with pytest.raises(ConfusionFileError, match=rf"^{bad} line 2: invalid JSON"):
        ConfusionDictionary.load_default()
    monkeypatch.setenv(ENV_FILE, str(tmp_path / "missing.jsonl"))
    with pytest.raises(ConfusionFileError, match=r"missing\.jsonl: cannot read"):
        ConfusionDictionary.load_default()


def test_load_confusions_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(SALGO + "\n", encoding="utf-8")
    (entry,) = load_confusions_file(path)
    assert isinstance(entry, ConfusionEntry)
    assert entry.wrong_words == ("salgo",) and entry.veto == ("salgo de casa", "me salgo")


def test_every_shipped_entry_can_fire(shipped: ConfusionDictionary) -> None:
    """No entry vetoes its own cues: each fires between its first before- and after-cue."""
    for entry in shipped.entries:
        before = entry.before[0] if entry.before else ""
        after = entry.after[0] if entry.after else (entry.near[0] if entry.near and not before else "")
        tokens = tokenize(f"{before} {entry.wrong} {after}")
        rules = [f.entry.rule for f in shipped.fixes_at(tokens, len(before.split()))]
        assert entry.rule in rules, entry.origin
