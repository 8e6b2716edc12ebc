"""Every command the README and docs show names files that exist and flags its script takes."""

import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from trl_icrl import DQNConfig

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TRL_PARSED = {"recipes/frozen_lake_dqn.py", "recipes/pretrain_tiny_base.py"}
"""Recipes whose flags are config fields (``TrlParser``), not ``argparse`` arguments."""
PRODUCED = ("outputs/", "results/", "trl_icrl/models/")
"""Folders that commands write to: a path under them may not exist before the command runs."""


def shown_commands(page: Path) -> list[str]:
    """The ``python``/``accelerate launch`` command lines of ``page``'s code blocks (fenced or indented) and inline
    code, with continuation lines joined and prompts and trailing comments dropped."""
    text = page.read_text().replace("\\\n", " ")
    inline = re.findall(r"`((?:python|accelerate launch) [^`]+)`", text)
    lines = [line.strip() for line in text.splitlines()] + inline
    commands = []
    for line in lines:
        for part in re.split(r"&&|;", line.split(" # ")[0]):
            part = part.strip().removeprefix("$ ")
            if re.match(r"(python|accelerate launch)\b", part) and re.search(r"\.py\b", part) and "`" not in part:
                commands.append(part)
    return commands


def script_flags(script: Path) -> set[str]:
    """The flags a script takes: for the TRL-parsed recipes ``DQNConfig``'s fields (a superset of
    ``TrainingArguments``') and the fields of the script's own dataclasses, else its ``argparse`` arguments."""
    source = script.read_text()
    flags = set(re.findall(r"add_argument\(\s*\"--([a-z_0-9]+)\"", source))
    if str(script.relative_to(ROOT)) in TRL_PARSED:
        flags |= {f.name for f in dataclasses.fields(DQNConfig)} | {"config"}
        flags |= set(re.findall(r"^    ([a-z_0-9]+): .*= field\(", source, flags=re.M))
    return flags


CASES = [(page, command) for page in PAGES for command in shown_commands(page)]


def test_the_pages_show_commands():
    assert any(page.name == "README.md" for page, _ in CASES) and len(CASES) >= 10


@pytest.mark.parametrize(("page", "command"), CASES, ids=[f"{p.name}:{c[:60]}" for p, c in CASES])
def test_a_shown_command_names_files_that_exist_and_flags_its_script_takes(page, command):
    words = shlex.split(command)
    script = next(w for w in words if w.endswith(".py"))
    assert (ROOT / script).is_file(), f"{page.name}: {command}: no {script}"
    flags = script_flags(ROOT / script)
    for word in words[words.index(script) + 1:]:
        if word.startswith("--"):
            flag = word[2:].split("=")[0]
            assert flag in flags, f"{page.name}: {command}: {script} takes no --{flag}"
        elif re.match(r"^[\w./-]+\.(yaml|json|py|md)$", word) and not word.startswith(PRODUCED):
            assert (ROOT / word).is_file(), f"{page.name}: {command}: no {word}"
    for word in words[:words.index(script)]:  # accelerate launch's own arguments: --config_file FILE
        if word.endswith(".yaml"):
            assert (ROOT / word).is_file(), f"{page.name}: {command}: no {word}"


def test_results_hold_the_models_the_readme_cites_and_experiments_hold_no_weights():
    """Each model in ``results/`` is cited by the README and keeps its card, a curve and its evaluation JSON; no
    run under ``experiments/`` keeps weights (a run's weights are committed only when the README cites it)."""
    cited = set(re.findall(r"results/([a-z0-9_]+)/", (ROOT / "README.md").read_text()))
    models = {path.parent.name: path.parent for path in (ROOT / "results").glob("*/icrl_config.json")}
    assert models and set(models) <= cited, f"models the README does not cite: {sorted(set(models) - cited)}"
    for folder in models.values():
        assert (folder / "README.md").read_text().startswith("---"), folder
        assert any(folder.rglob("*.png")) and any(folder.rglob("*.json")), folder
    weights = [p for ext in ("safetensors", "bin", "pt") for p in (ROOT / "experiments").rglob(f"*.{ext}")]
    assert not weights, weights


CHECKED_FOLDERS = ("results/", "experiments/", "recipes/", "benchmarks/", "docs/", "tests/")
"""Paths a page names that must exist in a clone (``outputs/`` is what commands write)."""


@pytest.mark.parametrize("page", [*PAGES, ROOT / "experiments" / "README.md"], ids=lambda p: p.name)
def test_every_path_a_page_names_exists(page):
    text = page.read_text()
    folders = "|".join(name.rstrip("/") for name in CHECKED_FOLDERS)
    found = re.findall(rf"(?<![\w./-])((?:\.\./)?(?:{folders})/[\w./-]*\w)", text)
    names = {name.removeprefix("../") for name in found}
    missing = sorted(name for name in names  # a name may be a prefix the page completes (map_seed1, 2, 3)
                     if not any((ROOT / name).parent.glob(Path(name).name + "*")))
    assert not missing, f"{page.name} names paths that do not exist: {missing}"
