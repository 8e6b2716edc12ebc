"""The base model and tokenizer a ``DQNTrainer`` trains on, from a name, a saved agent or as given."""

from __future__ import annotations

from pathlib import Path

import torch
from huggingface_hub import is_offline_mode
from huggingface_hub.constants import HF_HUB_CACHE
from peft import PeftConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..agent.config import ICRL_CONFIG
from ..agent.icrl_agent import ICRLAgent
from ..agent.q_network import ONLINE
from ..tiny_model import canonical_model_name, resolve_model_path
from .dqn_config import DQNConfig

__all__ = ["adapter_type_of", "load_base"]


def load_base(model: str | PreTrainedModel | PeftModel | None, tokenizer: PreTrainedTokenizerBase | None,
              args: DQNConfig) -> tuple[PreTrainedModel | PeftModel, PreTrainedTokenizerBase, str]:
    """The base causal LM (or the ``PeftModel`` given), its tokenizer, and the name ``adapter_config.json`` will
    name, from a name (``"tiny"``, a hub id, a dir, a saved agent's dir) or as given."""
    if isinstance(model, str) and (Path(model) / ICRL_CONFIG).is_file() and \
            (Path(model) / "adapter_config.json").is_file():
        model, tokenizer = load_saved_agent(model, tokenizer, args)
    loaded = model.get_base_model() if isinstance(model, PeftModel) else model
    name = canonical_model_name(loaded.name_or_path if isinstance(loaded, PreTrainedModel)
                                else model or args.model_name_or_path)
    path = resolve_model_path(name)
    init_kwargs = dict(args.model_init_kwargs or {})
    if args.trust_remote_code:
        init_kwargs.setdefault("trust_remote_code", True)
    tokenizer_kwargs = {k: init_kwargs[k] for k in ("revision", "trust_remote_code") if k in init_kwargs}
    if model is None or isinstance(model, str):
        dtype = init_kwargs.pop("dtype", args.dtype)
        if args.attn_implementation:
            init_kwargs.setdefault("attn_implementation", args.attn_implementation)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=dtype if dtype == "auto" or isinstance(dtype, torch.dtype) else getattr(torch, dtype),
                **init_kwargs)
        except OSError as err:
            raise ValueError(f"base model {name!r} could not be loaded: it is no local directory, "
                             f"and {'offline, ' if is_offline_mode() else ''}no Hub repo of that name was found "
                             f"(looked in the Hugging Face cache {HF_HUB_CACHE}): {err}") from None
        model.name_or_path = name  # what adapter_config.json records as the base
    return model, tokenizer or AutoTokenizer.from_pretrained(path, **tokenizer_kwargs), name


def load_saved_agent(path: str, tokenizer: PreTrainedTokenizerBase | None,
                     args: DQNConfig) -> tuple[PeftModel, PreTrainedTokenizerBase]:
    """The ``PeftModel`` and tokenizer of an agent saved by ``save_model`` (its adapter trains on from where it
    stopped, with a fresh optimizer); refused in one sentence when it was trained in another protocol."""
    agent = ICRLAgent.from_pretrained(path, precision="fp32")  # the trainer applies args.precision itself
    saved, asked = agent.config, (args.protocol_format, args.q_parameterisation)
    if (saved.protocol_format, saved.q_parameterisation) != asked:
        raise ValueError(f"the agent in {path} was trained with protocol_format={saved.protocol_format!r} and "
                         f"q_parameterisation={saved.q_parameterisation!r}; this config asks for {asked}")
    model = agent.network.model
    beside = Path(path) / saved.base_model  # a base saved in the agent's folder (``base/``)
    model.get_base_model().name_or_path = str(beside) if (beside / "config.json").is_file() else saved.base_model
    return model, tokenizer or agent.tokenizer


def adapter_type_of(args: DQNConfig, model: PreTrainedModel | PeftModel, peft_config: PeftConfig | None) -> str:
    """What trains, as ``icrl_config.json`` records it: the peft type of the adapter given (``"lora"``, ``"ia3"``,
    ...), else ``args.adapter_type`` (``"none"``: every weight)."""
    if isinstance(model, PeftModel):
        if model.active_adapter != ONLINE:
            raise ValueError(f"the PeftModel's active adapter is {model.active_adapter!r}: DQNTrainer trains the "
                             f"adapter named {ONLINE!r} (PeftModel.from_pretrained's default name)")
        peft_config = model.peft_config[ONLINE]
    return str(peft_config.peft_type.value).lower() if peft_config is not None else args.adapter_type
