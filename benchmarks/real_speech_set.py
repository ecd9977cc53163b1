"""The frozen real-speech report set: calls assembled from Asterisk Spanish prompts nothing else uses.

``benchmarks/data/real_speech_report.json`` holds the recipe (prompt list per call, the pause
before and after every prompt, seed, sox effects, SHA-256 of every source prompt file) and the
reference texts, copied from Debian's ``asterisk-core-sounds-es`` text file. It was written once,
before any tuning, by ``--write``, from the prompt sentences that no other benchmark, test or
calibration file uses (``used_prompts``: ``wer_calibration.py``'s 120 real clips, ``quality.py``'s
60, ``real_speech.py``'s dev calls and any prompt name found in the repository's tracked files);
its checksum is in ``benchmarks/data/real_speech_manifest.sha256`` and a test checks it. Report
numbers on it; choose nothing on it: ablations run on ``real_speech.py``'s dev calls.

    .venv/bin/python benchmarks/real_speech_set.py --write   # only to create the set, once
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from wer_calibration import REAL_SOUNDS, REAL_TEXT, load_real_prompts  # noqa: E402

REPORT_SET = BENCH / "data" / "real_speech_report.json"
MANIFEST = BENCH / "data" / "real_speech_manifest.sha256"
RATE = 8000
SEED = 20261207
CALLS = 9
EFFECTS = ["sinc", "300-3400"]  # telephone band, on the whole assembled call
PAUSE_RANGE = (0.35, 0.9)  # seconds of silence before each prompt and at the end
DEV_CALLS, DEV_CALL_SECONDS, DEV_SEED = 8, 46.0, 12  # real_speech.py's own (dev) calls


def prompt_seconds(stem: str) -> float:
    """Duration of one prompt file at 8 kHz."""
    return len(_pcm(stem)) / RATE


def _pcm(stem: str) -> np.ndarray:
    raw = subprocess.run(
        ["sox", str(REAL_SOUNDS / f"{stem}.gsm"), "-t", "raw", "-e", "signed", "-b", "16", "-"],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.int16)


def dev_prompts(prompts: list[tuple[str, str]]) -> set[str]:
    """Prompt names that ``real_speech.py``'s default dev calls use (seed 12, 8 calls of 46 s)."""
    shuffled = list(prompts)
    random.Random(DEV_SEED).shuffle(shuffled)
    pool, used = iter(shuffled), set()
    for _ in range(DEV_CALLS):
        seconds = 0.6
        while seconds < DEV_CALL_SECONDS:
            stem, _ = next(pool)
            used.add(stem)
            seconds += prompt_seconds(stem) + 0.6
    return used


def used_prompts(prompts: list[tuple[str, str]], repo: Path) -> set[str]:
    """Every prompt name another benchmark, test or calibration file uses, or that the repo names."""
    used = {stem for stem, _ in random.Random(7).sample(prompts, 120)}  # wer_calibration.py
    used |= {stem for stem, _ in random.Random(7).sample(prompts, 60)}  # quality.py
    used |= dev_prompts(prompts)
    files = subprocess.run(
        ["git", "ls-files", "benchmarks", "callpipe/data", "callpipe_tests"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    own = {REPORT_SET.relative_to(repo).as_posix(), Path(__file__).relative_to(repo).as_posix()}
    text = "\n".join(
        (repo / f).read_text(encoding="utf-8", errors="replace")
        for f in files
        if f not in own and (repo / f).is_file()
    )
    for stem, _ in prompts:
        if re.search(rf"(?<![\w-]){re.escape(stem)}(?![\w-])", text):
            used.add(stem)
    return used


def make_recipe(repo: Path) -> dict[str, Any]:
    """Shuffle the unused prompts (seeded) into :data:`CALLS` calls of about equal length."""
    prompts = load_real_prompts(REAL_SOUNDS, REAL_TEXT)
    used = used_prompts(prompts, repo)
    free = [(stem, text) for stem, text in prompts if stem not in used]
    rng = random.Random(SEED)
    rng.shuffle(free)
    seconds = {stem: prompt_seconds(stem) for stem, _ in free}
    total = sum(seconds.values())
    calls: list[dict[str, Any]] = []
    elapsed = 0.0
    for stem, text in free:
        # A prompt goes to the call its midpoint falls in: calls of about equal length.
        index = min(CALLS - 1, int((elapsed + seconds[stem] / 2) / total * CALLS))
        elapsed += seconds[stem]
        if index == len(calls):
            calls.append({"id": f"report{index:02d}", "prompts": []})
        digest = hashlib.sha256((REAL_SOUNDS / f"{stem}.gsm").read_bytes()).hexdigest()
        calls[-1]["prompts"].append(
            {
                "prompt": stem,
                "text": text,
                "pause_before": round(rng.uniform(*PAUSE_RANGE), 2),
                "sha256": digest,
            }
        )
    for call in calls:
        call["pause_after"] = round(rng.uniform(*PAUSE_RANGE), 2)
        call["reference"] = " ".join(p["text"] for p in call["prompts"])
    return {
        "description": "frozen real-speech report set: never tune on it (benchmarks/real_speech_set.py)",
        "source": (
            "Debian asterisk-core-sounds-es-gsm es_MX_f_Allison (CC-BY-SA-3.0), texts core-sounds-es.txt"
        ),
        "seed": SEED,
        "rate": RATE,
        "sox_effects": EFFECTS,
        "excluded_prompts": sorted(used),
        "calls": calls,
    }


def build_report_calls(directory: Path, recipe: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Assemble the frozen calls as 8 kHz wav files in ``directory``; check every source's SHA-256."""
    recipe = recipe or json.loads(REPORT_SET.read_text(encoding="utf-8"))
    out = []
    for call in recipe["calls"]:
        pieces = []
        for part in call["prompts"]:
            source = REAL_SOUNDS / f"{part['prompt']}.gsm"
            if hashlib.sha256(source.read_bytes()).hexdigest() != part["sha256"]:
                raise RuntimeError(f"{source} differs from the frozen set's copy")
            pieces += [np.zeros(int(part["pause_before"] * RATE), dtype=np.int16), _pcm(part["prompt"])]
        pieces.append(np.zeros(int(call["pause_after"] * RATE), dtype=np.int16))
        raw = directory / f"{call['id']}.raw.wav"
        path = directory / f"{call['id']}.wav"
        sf.write(raw, np.concatenate(pieces), recipe["rate"], subtype="PCM_16")
        subprocess.run(["sox", str(raw), "-b", "16", str(path), *recipe["sox_effects"]], check=True)
        raw.unlink()
        seconds = sf.info(str(path)).duration
        out.append({"id": call["id"], "path": path, "reference": call["reference"], "seconds": seconds})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="create the frozen set (once)")
    args = parser.parse_args()
    repo = BENCH.parent
    if not args.write:
        recipe = json.loads(REPORT_SET.read_text(encoding="utf-8"))
        for call in recipe["calls"]:
            print(call["id"], len(call["prompts"]), "prompts")
        return
    if REPORT_SET.exists():
        raise SystemExit(f"{REPORT_SET} exists: the report set is frozen")
    recipe = make_recipe(repo)
    REPORT_SET.parent.mkdir(parents=True, exist_ok=True)
    REPORT_SET.write_text(json.dumps(recipe, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    digest = hashlib.sha256(REPORT_SET.read_bytes()).hexdigest()
    MANIFEST.write_text(f"{digest}  {REPORT_SET.name}\n", encoding="utf-8")
    print(f"wrote {REPORT_SET} ({len(recipe['calls'])} calls) and {MANIFEST}")


if __name__ == "__main__":
    main()
