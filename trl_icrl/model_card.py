"""The model card (README.md) of a directory written by ``DQNTrainer``, and its upload to the Hub.

The card is rendered by ``huggingface_hub.ModelCard.from_template`` from ``trl_icrl/model_cards/template.md``,
package data read with ``importlib.resources`` (so an installed wheel writes cards too).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata, resources
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token, is_offline_mode
from huggingface_hub.constants import ENV_VARS_TRUE_VALUES
from huggingface_hub.utils import filter_repo_objects

from .agent.config import ICRL_CONFIG, AgentConfig
from .envs.families import map_family
from .precision import cpu_bf16_units
from .tiny_model import SHIPPED_BASES, TINY_BASE_NAME

TEMPLATE_PATH = resources.files("trl_icrl") / "model_cards" / "template.md"
CARD_NAME = "README.md"
SHORT_EVAL = "short_eval.json"
"""The short evaluation ``DQNTrainer.save_run`` writes: held-out maps, trained and untrained."""
IN_CONTEXT_PLOT = "heldout_in_context.png"
"""Its figure: success by episode index within a context, trained against untrained."""
UPLOAD_PATTERNS = (
    "adapter_config.json", "adapter_model.safetensors", "config.json", "generation_config.json",
    "model.safetensors", "model-*-of-*.safetensors", "model.safetensors.index.json", "base/config.json",
    "base/generation_config.json", "base/model.safetensors", "base/model-*-of-*.safetensors",
    "base/model.safetensors.index.json", "tokenizer*",
    "special_tokens_map.json", "added_tokens.json", "chat_template.jinja", ICRL_CONFIG, CARD_NAME, "*.png", "*.gif",
    "results.json", SHORT_EVAL,
)
"""Files shipped to the Hub: the adapter (and its ``base/`` when the base has no hub id) or the fully fine-tuned
model, tokenizer, card and results; never the ``target/`` network, ``training_args.bin``, the replay store or
checkpoints."""
WEIGHTS = ("adapter_model.safetensors", "model.safetensors")
FRAMEWORKS = {"trl_icrl": "trl_icrl", "TRL": "trl", "Transformers": "transformers", "PEFT": "peft",
              "PyTorch": "torch", "Datasets": "datasets", "Tokenizers": "tokenizers", "Gymnasium": "gymnasium"}
"""The libraries a card names with their versions: the name it shows -> the distribution's."""
BASE_LICENSES = {"trl-icrl/tiny-llama": "apache-2.0", "tiny-random": "apache-2.0",
                 "llama-3.1": "llama3.1", "smollm2": "apache-2.0"}
"""The license of an adapter is its base's: by the base's name (lower case) or a part of it."""


def base_license(base_model: str) -> str | None:
    """The license of ``base_model`` when known (``BASE_LICENSES``), else ``None``."""
    name = base_model.lower()
    return next((license for key, license in BASE_LICENSES.items() if key in name), None)
METRIC_NAMES = {"final10_success": "final-10 success rate", "map_b_final10_success": "final-10 success rate on map B",
                "paper_map_successes": "greedy successes of 5 on the paper's map"}
CONDITION_METRICS = ("map_b_final10_success", "paper_map_successes")
"""The trained agent's numbers of one condition that the model-index carries besides its final-10 success."""


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _evaluations(output_dir: Path) -> tuple[list[dict], list[str], dict]:
    """``(results, agents, short_eval)`` for the template: per condition final-10 success of every agent and its
    whole summary (``results.json``), else the trained and untrained summaries of ``short_eval.json``."""
    report = _read_json(output_dir / "results.json")
    if report is not None:
        results = [{"condition": name, "agents": {a: s["final10_success"] for a, s in result["agents"].items()},
                    "summaries": result["agents"]}
                   for name, result in report["conditions"].items()]
        agents = list(dict.fromkeys(a for r in results for a in r["agents"]))
        return results, agents, {}
    short = _read_json(output_dir / SHORT_EVAL) or {}
    return [], [], {name: short[name] for name in ("trained", "untrained") if name in short}


def training_minutes(output_dir: Path) -> float | None:
    """Minutes the run trained (``train_runtime`` in the log history of ``short_eval.json``), when recorded."""
    history = (_read_json(output_dir / SHORT_EVAL) or {}).get("log_history", [])
    runtimes = [entry["train_runtime"] for entry in history if "train_runtime" in entry]
    return runtimes[-1] / 60 if runtimes else None


def _eval_results(results: list[dict], short_eval: dict, config: AgentConfig) -> list[EvalResult]:
    """One model-index entry per evaluated condition: the saved model's final-10 success, then its
    ``CONDITION_METRICS``."""
    if results:
        from .evaluation import TRAINED  # the evaluator (and matplotlib) only when there is a report to read

        trained = [(r["condition"], r["summaries"][TRAINED]) for r in results if TRAINED in r["summaries"]]
        scores = [(name, "final10_success", summary["final10_success"]) for name, summary in trained]
        scores += [(name, key, summary[key]) for name, summary in trained
                   for key in CONDITION_METRICS if key in summary]
    elif "trained" in short_eval:
        condition = "in_distribution" if config.map_family == "id" else "out_of_distribution"
        scores = [(f"{condition}_short_eval", "final10_success", short_eval["trained"]["final10_success"])]
    else:
        scores = []
    # the Hub keys results by task and dataset type/config (not name): the condition is the config
    return [EvalResult(task_type="reinforcement-learning", dataset_type=config.env_id, dataset_name=name,
                       dataset_config=name, metric_type=metric, metric_name=METRIC_NAMES[metric], metric_value=value)
            for name, metric, value in scores]


COMMANDS = {"frozen_lake_dqn.py": "accelerate launch recipes/frozen_lake_dqn.py", "trl-icrl": "trl-icrl",
            "dqn.py": "trl-icrl dqn"}
"""The programs whose command line a card repeats: the main job's recipe, the ``trl-icrl`` command and the script it
launches (``trl_icrl/scripts/dqn.py``)."""


def training_command(argv: Sequence[str] | None = None) -> str | None:
    """The command line that is training now (``argv``: ``sys.argv``) when it runs the main job, else ``None``
    (training from Python: the card's hyperparameters say what ran)."""
    argv = sys.argv if argv is None else argv
    program = COMMANDS.get(Path(argv[0]).name) if argv else None
    return " ".join([program, shlex.join(argv[1:])]).strip() if program else None


def machine_description() -> str:
    """The machine training runs on, as a card states it: the GPU's name, else the CPU's cores and bf16 units."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    units = ", ".join(cpu_bf16_units()) or "no bf16 units"
    return f"a {os.cpu_count()}-core CPU ({units})"


def framework_versions() -> dict[str, str]:
    """The installed version of each of ``FRAMEWORKS`` (``"unknown"`` for one not installed)."""
    versions = {}
    for name, distribution in FRAMEWORKS.items():
        try:
            versions[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def build_model_card(output_dir: str | os.PathLike, config: AgentConfig, training_args: Mapping,
                     global_step: int, repo_id: str | None = None, *, tags: Sequence[str] = (),
                     model_name: str | None = None, dataset_name: str | None = None) -> ModelCard:
    """The model card of ``output_dir``, filled from its agent ``config``, the training arguments
    (``DQNConfig.to_dict()``) and the evaluation files found there (``results.json``, ``short_eval.json``).

    The usage snippet loads ``repo_id`` when given, else ``output_dir`` as written. ``tags`` (``DQNTrainer``'s
    ``_tag_names`` and any more) come before the adapter's and the env's; ``model_name`` defaults to the repo's or
    the folder's name; ``dataset_name``: the dataset of histories trained on, if any.
    """
    if not TEMPLATE_PATH.is_file():
        raise FileNotFoundError(f"model card template {TEMPLATE_PATH} is missing: it ships inside the trl_icrl "
                                "package as trl_icrl/model_cards/template.md; reinstall trl_icrl")
    output_dir = Path(output_dir)
    model_id = repo_id or str(output_dir)
    results, agents, short_eval = _evaluations(output_dir)
    eval_results = _eval_results(results, short_eval, config)
    model_name = model_name or (repo_id or output_dir.resolve().name).split("/")[-1]
    full = config.adapter_type == "none"
    base_model = config.base_model
    hub_base = base_model if "/" in base_model and not (output_dir / base_model).exists() else None
    card_data = ModelCardData(
        base_model=hub_base, license=base_license(base_model), library_name="transformers" if full else "peft",
        pipeline_tag="reinforcement-learning",
        tags=list(dict.fromkeys([*tags, "full-fine-tuning" if full else config.adapter_type, config.env_id])),
        model_name=model_name, datasets=[dataset_name] if dataset_name else None,
        eval_results=eval_results or None)
    curves = [f"{r['condition']}.png" for r in results if (output_dir / f"{r['condition']}.png").is_file()]
    curves += [IN_CONTEXT_PLOT] if (output_dir / IN_CONTEXT_PLOT).is_file() else []  # DQNTrainer.save_run
    curves += ["replay.gif"] if (output_dir / "replay.gif").is_file() else []  # evaluate_icrl.py --video
    training_curve = "training_curve.png" if (output_dir / "training_curve.png").is_file() else None
    family = map_family(config.env_id, config.map_family)
    return ModelCard.from_template(
        card_data, template_str=TEMPLATE_PATH.read_text(encoding="utf-8"), model_name=model_name, model_id=model_id,
        config=config.to_dict(), args=training_args, global_step=global_step,
        dtype=training_args.get("dtype", "float32"), family=family, shipped_base=base_model in SHIPPED_BASES,
        default_base=TINY_BASE_NAME, results=results, agents=agents,
        short_eval=short_eval, curves=curves, training_curve=training_curve, dataset_name=dataset_name,
        versions=framework_versions(), command=training_command(), machine=machine_description(),
        train_minutes=training_minutes(output_dir))


def write_model_card(output_dir: str | os.PathLike, config: AgentConfig, training_args: Mapping,
                     global_step: int, repo_id: str | None = None, **kwargs) -> Path:
    """Write ``build_model_card(...)`` (``kwargs``: its ``tags``, ``model_name``, ``dataset_name``) to
    ``output_dir/README.md``; returns its path."""
    path = Path(output_dir) / CARD_NAME
    build_model_card(output_dir, config, training_args, global_step, repo_id, **kwargs).save(path)
    return path


def files_to_upload(output_dir: str | os.PathLike) -> list[str]:
    """The files of ``output_dir`` that ``push_folder_to_hub`` ships (sorted names; see ``UPLOAD_PATTERNS``)."""
    root = Path(output_dir)
    names = sorted(str(p.relative_to(root)) for p in [*root.iterdir(), *root.glob("base/*")] if p.is_file())
    return list(filter_repo_objects(names, allow_patterns=list(UPLOAD_PATTERNS)))


def push_token(token: str | None = None) -> str:
    """The token to push with: ``token``, else the one logged in; raises one sentence, before any network call,
    when offline mode is on or there is no token."""
    if is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in ENV_VARS_TRUE_VALUES:
        raise RuntimeError("Cannot push to the Hub because offline mode is on (HF_HUB_OFFLINE or "
                           "TRANSFORMERS_OFFLINE is set); unset it before starting Python to upload.")
    token = token or get_token()
    if token is None:
        raise RuntimeError("Cannot push to the Hub because no Hugging Face token was found; run "
                           "`hf auth login` (formerly `huggingface-cli login`), set HF_TOKEN or pass token=.")
    return token


def push_folder_to_hub(output_dir: str | os.PathLike, repo_id: str, token: str | None = None,
                       private: bool | None = None,
                       commit_message: str = "Upload in-context RL agent trained with trl_icrl") -> str:
    """Create ``repo_id`` if needed and upload ``files_to_upload(output_dir)``; returns the repo URL.

    Write the card with the same ``repo_id`` first (``write_model_card``) so its snippet names the repo.
    """
    token = push_token(token)
    files = files_to_upload(output_dir)
    if ICRL_CONFIG not in files or not set(WEIGHTS) & set(files):
        raise FileNotFoundError(f"{output_dir} lacks {ICRL_CONFIG} or weights ({' or '.join(WEIGHTS)}): not a "
                                "directory written by DQNTrainer")
    api = HfApi(token=token)
    url = api.create_repo(repo_id, exist_ok=True, private=private)
    api.upload_folder(folder_path=output_dir, repo_id=url.repo_id, allow_patterns=files,
                      commit_message=commit_message)
    return str(url)
