"""Local weights under a Hub name: a snapshot in the Hugging Face cache, so that ``from_pretrained(repo_id)`` and
peft's loaders (which read the base's name in ``adapter_config.json``) find them offline."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from huggingface_hub.constants import HF_HUB_CACHE
from transformers import AutoModelForCausalLM, AutoTokenizer

DEQUANTISED_FROM = "dequantised_from"
"""The key a dequantised base's ``config.json`` records its GGUF file under (the model card repeats it)."""


def install_in_hub_cache(repo_id: str, revision: str, write: Callable[[Path], None],
                         cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Make ``revision`` of ``repo_id`` the cache's ``main``, writing its files with ``write(folder)`` unless that
    snapshot already has a ``config.json``. Returns the snapshot dir, or ``None`` when the cache is read-only."""
    repo = Path(cache_dir or HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    try:
        if not (snapshot / "config.json").is_file():
            staging = repo / "snapshots" / f".{revision}.{os.getpid()}"
            write(staging)
            os.replace(staging, snapshot) if not snapshot.exists() else shutil.rmtree(staging)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        if not (repo / "refs" / "main").is_file() or (repo / "refs" / "main").read_text() != revision:
            (repo / "refs" / "main").write_text(revision)
    except OSError:
        return None
    return snapshot


def dequantise_gguf(gguf_file: str | os.PathLike, repo_id: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Load a GGUF checkpoint with transformers (dequantised to fp32) and install it with its tokenizer as
    ``repo_id``; its ``config.json`` records the file under ``dequantised_from``. Returns the snapshot dir."""
    gguf_file = Path(gguf_file)
    if not gguf_file.is_file():
        raise FileNotFoundError(f"no GGUF file at {gguf_file}")
    revision = hashlib.sha1(f"{gguf_file.name}:{gguf_file.stat().st_size}".encode()).hexdigest()

    def write(folder: Path) -> None:
        kwargs = {"gguf_file": gguf_file.name}
        model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, **kwargs)
        model.hf_quantizer = None  # the weights are dequantised: plain fp32 tensors, saved as such
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        setattr(model.config, DEQUANTISED_FROM, gguf_file.name)
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(gguf_file.parent, **kwargs).save_pretrained(folder)

    snapshot = install_in_hub_cache(repo_id, revision, write, cache_dir)
    if snapshot is None:
        raise OSError(f"the Hugging Face cache {cache_dir or HF_HUB_CACHE} is read-only: cannot install {repo_id}")
    return snapshot
