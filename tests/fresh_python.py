"""Code run in a new Python process: what a user's fresh session sees (offline, chosen caches)."""

import os
import subprocess
import sys
from pathlib import Path


def fresh_process(code: str, tmp_path: Path, hf_home: str | os.PathLike | None = None) -> str:
    """Run ``code`` in a new Python, offline, with an empty model home and the Hugging Face cache ``hf_home`` (an
    empty one under ``tmp_path`` when ``None``); returns stdout."""
    env = dict(os.environ, HF_HOME=str(hf_home or tmp_path / "hf_home"), TRL_ICRL_HOME=str(tmp_path / "icrl_home"),
               HF_HUB_OFFLINE="1")
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
