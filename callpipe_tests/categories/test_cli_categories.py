"""``callpipe categories``: load a YAML file (stored and applied to every stored call), list,
apply, and a clear one-line error for an invalid file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from callpipe import cli
from callpipe.analytics import open_analytics_store, rows_for_day
from callpipe.analytics.synthetic import generated_calls
from callpipe.pii import RedactionMode


def test_load_list_apply_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tables_dir = tmp_path / "analytics"
    monkeypatch.setenv("CALLPIPE_ANALYTICS_DB", str(tables_dir))
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "recordings"))
    tables = open_analytics_store(str(tables_dir))
    tables.replace_day(
        "2026-03-01", *rows_for_day(generated_calls("2026-03-01", 30), mode=RedactionMode.MASK)
    )
    tables.close()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- name: tarjeta\n  speaker: customer\n  phrases: [robado la tarjeta]\n", encoding="utf-8"
    )
    assert cli.main(["categories", "load", str(rules)]) == 0
    loaded = json.loads(capsys.readouterr().out)
    assert loaded["tarjeta"]["state"] == "done" and loaded["tarjeta"]["covered"] == 30
    tables = open_analytics_store(str(tables_dir))
    items, _ = tables.list_calls(category="tarjeta", limit=100)
    assert items and all(r["primary_intent"] == "card_issue" for r in items)
    tables.close()
    assert cli.main(["categories", "list"]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)["items"]] == ["tarjeta"]
    assert cli.main(["categories", "apply", "tarjeta"]) == 0
    assert json.loads(capsys.readouterr().out)["covered"] == 30
    rules.write_text("- name: x\n  phrases: []\n", encoding="utf-8")
    assert cli.main(["categories", "load", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "category #1" in err and "phrases" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["categories", "apply", "nothing"]) == 2
