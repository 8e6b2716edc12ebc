"""Every committed model card says how to rebuild its model: the commands, the base, updates and minutes, machine
and precision; each command still parses with today's command line, so a stale flag fails here."""

import json
import re
import shlex
from pathlib import Path

import pytest
from test_docs import script_flags

from trl_icrl.cli import parse_config

ROOT = Path(__file__).parent.parent
CARDS = sorted([*ROOT.glob("results/*/README.md"), *ROOT.glob("experiments/runs/*/README.md")])
MAIN_JOB = "accelerate launch recipes/frozen_lake_dqn.py"


def reproduce_section(card: Path) -> str:
    """The card's ``## Reproduce`` section."""
    found = re.search(r"^## Reproduce\n(.*?)(?=^## )", card.read_text(), re.S | re.M)
    assert found, f"{card}: no ## Reproduce section"
    return found.group(1)


def test_every_model_folder_has_a_card():
    configs = [*ROOT.glob("results/*/icrl_config.json"), *ROOT.glob("experiments/runs/*/icrl_config.json")]
    folders = {path.parent for path in configs}
    carded = {card.parent for card in CARDS}
    assert carded and carded <= folders
    assert folders - carded <= {ROOT / "experiments" / "runs" / "tiny_mdp_only_2800"}  # evaluated runs only


@pytest.mark.parametrize("card", CARDS, ids=lambda c: c.parent.name)
def test_a_card_gives_base_updates_machine_and_commands_the_cli_takes(card):
    section = reproduce_section(card)
    config = json.loads((card.parent / "icrl_config.json").read_text())
    steps = re.search(r"\| steps trained \| (\d+)", card.read_text()).group(1)
    assert f"{int(steps):,} " in section and "minutes" in section
    assert re.search(r"\*\*Machine and precision:\*\* .*(CPU|H200|GPU).*, (fp32|bf16)", section)
    if config["base_model"] != "base":
        assert f"**Base:** `{config['base_model']}`" in section
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()
    assert any(c.startswith(MAIN_JOB) for c in commands)
    for command in commands:
        words = shlex.split(command)
        script = next(w for w in words if w.endswith(".py"))
        assert (ROOT / script).is_file(), command
        if command.startswith(MAIN_JOB):
            parse_config(words[3:])  # a flag the main job no longer takes exits here
            continue
        flags = script_flags(ROOT / script)
        for word in words[words.index(script) + 1:]:
            assert not word.startswith("--") or word[2:] in flags, f"{script} takes no {word}"
