"""What an installed trl_icrl costs to import, and that a wheel installed without the source tree works."""

import json
import subprocess
import sys

IMPORTED = """
import json, sys
import trl_icrl
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"
                        or m.startswith(("trl_icrl.evaluator", "trl_icrl.evaluation")))))
"""


def test_import_loads_no_plotting_and_no_evaluator():
    done = subprocess.run([sys.executable, "-c", IMPORTED], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
