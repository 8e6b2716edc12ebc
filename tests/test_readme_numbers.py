"""The README's results tables equal what their committed evaluation files give (``experiments/readme_tables.py``),
and a number edited by hand in one of them fails."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "experiments" / "readme_tables.py"


def load_tables():
    """``experiments/readme_tables.py`` as a module."""
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLES = load_tables()


def test_every_readme_table_equals_its_files():
    text = (ROOT / "README.md").read_text()
    assert TABLES.differing_tables(text) == []
    for name in TABLES.TABLES:
        assert TABLES.table_pattern(name).search(text), f"the README has no table {name}"


@pytest.mark.parametrize("name", list(TABLES.TABLES))
def test_a_number_edited_by_hand_fails(name, tmp_path):
    text = (ROOT / "README.md").read_text()
    block = TABLES.table_pattern(name).search(text)
    number = re.search(r"\d\.\d+", block.group(2))
    edited_digit = "1" if number.group()[-1] != "1" else "2"
    start = block.start(2) + number.end() - 1
    edited = text[:start] + edited_digit + text[start + 1:]
    assert TABLES.differing_tables(edited) == [name]
    readme = tmp_path / "README.md"
    readme.write_text(edited)
    done = subprocess.run([sys.executable, str(SCRIPT), "--check", "--readme", str(readme)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and f"table(s) {name} differ" in done.stderr

