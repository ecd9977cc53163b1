"""The one settings object: every variable registered, typed, documented, read at start, never at import."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from callpipe import cli
from callpipe.settings import (
    README_BEGIN,
    README_END,
    Settings,
    SettingsError,
    markdown_table,
    write_readme_table,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "callpipe"
VARIABLE = re.compile(
    r"(STORAGE|S3|CALLPIPE|BATCH|ONLINE|OFFLINE|DAGSTER_PG|CELERY|PII|RETENTION)_[A-Z0-9_]+|DAGSTER_HOME"
)
NOT_READ_BY_CALLPIPE = {"CALLPIPE_FUZZ_PROFILE", "CALLPIPE_FUZZ_SCALE"}  # test-suite knobs
# callpipe/faultpoints.py, inert unless set
TEST_HOOKS = {"CALLPIPE_FAULT_PARK", "CALLPIPE_FAULT_READY", "CALLPIPE_FAULT_RESUME"}


def _string_constants() -> set[str]:
    """Strings in callpipe's code shaped like its variable names (``__all__`` lists left out)."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        exported = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)
            for n in ast.walk(node.value)
        }
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            if id(node) not in exported and VARIABLE.fullmatch(text):
                found.add(text)
    return found


def test_every_variable_the_code_names_is_a_setting() -> None:
    missing = _string_constants() - set(Settings.variables()) - NOT_READ_BY_CALLPIPE - TEST_HOOKS
    assert not missing, f"register these in callpipe/settings.py: {sorted(missing)}"


def test_every_setting_has_a_type_default_and_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and "\n" not in field.description, name
        assert not field.is_required(), name
        assert field.annotation is not None, name
    defaults = Settings()
    assert Settings.from_env({}) == defaults
    assert defaults.batch_max_concurrent == 2 and defaults.storage_backend == "local"


def test_readme_table_is_generated_from_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert README_BEGIN in readme and README_END in readme
    table = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()
    assert table == markdown_table(), "README is stale: paste `python -m callpipe.settings --markdown`"
    for variable in Settings.variables():
        assert f"| `{variable}` |" in table


def test_values_are_typed_blank_is_unset_and_spelling_is_forgiven() -> None:
    settings = Settings.from_env(
        {
            "BATCH_MAX_CONCURRENT": " 4 ",
            "STORAGE_BACKEND": " Both ",
            "CALLPIPE_LOG_LEVEL": "info",
            "RETENTION_DAYS": "30",
            "S3_BUCKET": "   ",
            "UNRELATED": "x",
        }
    )
    assert settings.batch_max_concurrent == 4
    assert settings.storage_backend == "both"
    assert settings.callpipe_log_level == "INFO"
    assert settings.retention_days == 30
    assert settings.s3_bucket is None


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"BATCH_MAX_CONCURRENT": "abc"}, "BATCH_MAX_CONCURRENT='abc'"),
        ({"BATCH_MAX_CONCURRENT": "0"}, "BATCH_MAX_CONCURRENT='0'"),
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND='ftp'"),
        ({"CALLPIPE_MAX_FAILURE_RATE": "2"}, "CALLPIPE_MAX_FAILURE_RATE='2'"),
        ({"RETENTION_HOUR": "25"}, "RETENTION_HOUR='25'"),
        ({"DAGSTER_PG_PORT": "x"}, "DAGSTER_PG_PORT='x'"),
        ({"CALLPIPE_TIMEZONE": "Mars/Olympus"}, "CALLPIPE_TIMEZONE='Mars/Olympus'"),
        ({"CALLPIPE_START_DATE": "2024-13-01"}, "CALLPIPE_START_DATE='2024-13-01'"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(environ)
    message = str(info.value)
    assert message.startswith(variable) and "\n" not in message


def test_several_bad_values_are_named_on_one_line() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"BATCH_MAX_CONCURRENT": "abc", "BATCH_LEASE_SECONDS": "1"})
    message = str(info.value)
    assert "BATCH_MAX_CONCURRENT" in message and "BATCH_LEASE_SECONDS" in message and "\n" not in message


def test_only_reads_the_named_variables() -> None:
    environ = {"BATCH_MAX_CONCURRENT": "abc", "RETENTION_HOUR": "5"}
    assert Settings.from_env(environ, only=["RETENTION_HOUR"]).retention_hour == 5
    with pytest.raises(KeyError, match="NOT_A_SETTING"):
        Settings.from_env(environ, only=["NOT_A_SETTING"])


def test_secrets_stay_hidden() -> None:
    key = "a-secret-pii-key-of-enough-length"
    settings = Settings.from_env({"CALLPIPE_PII_KEY": key, "DAGSTER_PG_PASSWORD": "pw-123456"})
    assert key not in repr(settings) and "pw-123456" not in repr(settings)
    assert settings.callpipe_pii_key is not None and settings.callpipe_pii_key.get_secret_value() == key


def test_cli_exits_2_with_one_line_on_a_bad_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "recordings"))
    monkeypatch.setenv("BATCH_MAX_CONCURRENT", "abc")
    assert cli.main(["stats"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callpipe: error: BATCH_MAX_CONCURRENT='abc'")


def test_write_readme_replaces_only_the_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{README_BEGIN}\n| old |\n{README_END}\n\nafter\n", encoding="utf-8")
    write_readme_table(readme)
    text = readme.read_text(encoding="utf-8")
    assert text == f"# title\n\n{README_BEGIN}\n{markdown_table()}\n{README_END}\n\nafter\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_settings_command_prints_the_table_and_checks_the_environment() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callpipe.settings", "--markdown"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == markdown_table()


_SPY = """
import json, os, sys
names = set(json.loads(sys.argv[1]))
read = set()
real = os.environ
import callpipe
PACKAGE = os.path.dirname(callpipe.__file__)
def note(key):
    # Only callpipe's own reads count: libraries that copy the whole environment at import
    # (platform, fsspec: dict(os.environ)) read every variable that happens to be set.
    if sys._getframe(2).f_code.co_filename.startswith(PACKAGE):
        read.add(key)
class Environ:
    def __getattr__(self, attr):
        return getattr(real, attr)
    def get(self, key, default=None):
        note(key)
        return real.get(key, default)
    def __getitem__(self, key):
        note(key)
        return real[key]
    def __contains__(self, key):
        note(key)
        return key in real
    def __iter__(self):
        return iter(real)
    def __len__(self):
        return len(real)
    def __setitem__(self, key, value):
        real[key] = value
os.environ = Environ()
import importlib, pkgutil
for info in pkgutil.walk_packages(callpipe.__path__, "callpipe."):
    if info.name.startswith(tuple(sys.argv[2:])):
        continue
    importlib.import_module(info.name)
print(json.dumps(sorted(read & names)))
"""


def test_no_setting_is_read_at_import() -> None:
    """Importing every module reads no setting, except the Dagster code location's definitions
    (partitions, schedules), which are built from the settings when Dagster loads them."""
    code_location = [
        "callpipe.defs.assets",
        "callpipe.defs.checks",
        "callpipe.defs.definitions",
        "callpipe.defs.jobs",
        "callpipe.defs.launch",
        "callpipe.defs.retention_job",
        "callpipe.defs.schedules",
        "callpipe.defs.sensors",
        "callpipe.defs.table_assets",
        "callpipe.service",
    ]
    done = subprocess.run(
        [sys.executable, "-c", _SPY, json.dumps(Settings.variables()), *code_location],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
