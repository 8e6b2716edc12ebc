"""Q-values from a causal LM: one forward over a whole trial gives Q at every decision.

Two parameterisations share one interface, ``Q[batch, decision, action]``:

- ``value_head`` (default): a linear ``hidden -> n_actions`` head, ``q_head``, on the causal LM, trained
  with the model (with a peft adapter: saved with it through peft's ``modules_to_save``);
- ``action_logits`` (the paper): the LM head's logits of the first token of each action word.

What trains: a peft adapter (LoRA or IA3) on a frozen base, whose target network is a second adapter,
``target``, on the same base; or, with no adapter (TRL's convention: no peft config means full
fine-tuning), every weight, whose target network is a frozen copy of the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import IA3Config, LoraConfig, PeftConfig, PeftModel, get_peft_model
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file
from torch import nn

from ..choices import ADAPTER_TYPES, Q_PARAMETERISATIONS
from ..precision import autocast
from .layer_cache import decoder_of, freeze_below, layer_span

Q_HEAD = "q_head"
ONLINE, TARGET = "default", "target"
FULL_WEIGHTS = "model.safetensors"


def add_q_head(model: nn.Module, n_actions: int, replace: bool = False) -> nn.Module:
    """Attach ``model.q_head = Linear(hidden, n_actions)`` in fp32 (small init) unless a head of that size is there;
    a head of another size raises, or with ``replace`` (a base's untrained head, another env) gives way to a new one."""
    head = getattr(model, Q_HEAD, None)
    if head is not None:
        if head.out_features == n_actions:
            return model
        if not replace:
            raise ValueError(f"the model's Q head has {head.out_features} actions, the env has {n_actions}")
    if hasattr(model.config, "n_actions"):  # the embedded base's config sizes its head
        model.config.n_actions = n_actions
    hidden = model.config.get_text_config().hidden_size
    head = nn.Linear(hidden, n_actions, device=next(model.parameters()).device, dtype=torch.float32)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    setattr(model, Q_HEAD, head)
    return model


def load_q_head(model: nn.Module, directory: str | Path) -> None:
    """Load ``q_head.*`` from a fully fine-tuned model's ``model.safetensors`` (``from_pretrained`` drops it)."""
    state = {k.removeprefix(f"{Q_HEAD}."): v for k, v in load_file(Path(directory) / FULL_WEIGHTS).items()
             if k.startswith(f"{Q_HEAD}.")}
    if not state:
        raise ValueError(f"{directory} holds no {Q_HEAD} weights: not a value-head model saved by DQNTrainer")
    getattr(model, Q_HEAD).load_state_dict(state)


def make_peft_config(adapter_type: str, q_parameterisation: str, r: int = 64, alpha: int = 64,
                     dropout: float = 0.0, target_modules: list[str] | str | None = None,
                     use_rslora: bool = False) -> PeftConfig | None:
    """LoRA (peft's scaling ``alpha / r``, or ``alpha / sqrt(r)`` with ``use_rslora``) or IA3 on the causal LM; the
    Q head, when used, goes in ``modules_to_save``. ``"none"`` gives ``None``: full fine-tuning."""
    if adapter_type not in ADAPTER_TYPES:
        raise ValueError(f"adapter_type must be one of {ADAPTER_TYPES}, got {adapter_type!r}")
    if q_parameterisation not in Q_PARAMETERISATIONS:
        raise ValueError(f"q_parameterisation must be one of {Q_PARAMETERISATIONS}, got {q_parameterisation!r}")
    if adapter_type == "none":
        return None
    modules_to_save = [Q_HEAD] if q_parameterisation == "value_head" else None
    if adapter_type == "ia3":
        return IA3Config(task_type="CAUSAL_LM", target_modules=target_modules, modules_to_save=modules_to_save)
    return LoraConfig(task_type="CAUSAL_LM", r=r, lora_alpha=alpha, lora_dropout=dropout, use_rslora=use_rslora,
                      target_modules=target_modules or "all-linear", modules_to_save=modules_to_save)


def adapter_parameters(model: nn.Module, adapter: str) -> dict[str, nn.Parameter]:
    """The parameters of one adapter (Q head copy included), keyed by a name shared across adapters."""
    params = {}
    for name, p in model.named_parameters():
        parts = name.split(".")  # LoRA: "...lora_A.default.weight"; IA3: "...ia3_l.default"
        if adapter in parts:
            params[".".join("<adapter>" if part == adapter else part for part in parts)] = p
    return params


class QNetwork(nn.Module):
    """A causal LM (with a peft adapter, or fully trainable) that reads Q-values at given positions.

    Args:
        model: a ``PeftModel`` holding the online adapter ``default`` (and ``target`` after
            ``add_target_adapter``), or a causal LM whose weights all train (full fine-tuning).
        q_parameterisation: ``"value_head"`` or ``"action_logits"``.
        action_token_ids: (n_actions,) first token of each action word; used by ``action_logits``.
        initial_state: full fine-tuning only: the weights before training (or a function returning them),
            which ``untrained()`` plays with.
        precision: ``"bf16"``: the model's matmuls run under bf16 autocast (``trl_icrl.precision``); ``"fp32"``:
            as the weights are. The Q head's output is fp32 either way.
    """

    def __init__(self, model: nn.Module, q_parameterisation: str, action_token_ids: list[int],
                 initial_state: dict[str, torch.Tensor] | Callable[[], dict[str, torch.Tensor]] | None = None,
                 precision: str = "fp32"):
        super().__init__()
        if q_parameterisation not in Q_PARAMETERISATIONS:
            raise ValueError(f"q_parameterisation must be one of {Q_PARAMETERISATIONS}, "
                             f"got {q_parameterisation!r}")
        self.model = model
        self.target_model: nn.Module | None = None
        self.q_parameterisation = q_parameterisation
        self.initial_state = initial_state
        self._initial_weights: dict[str, torch.Tensor] | None = None
        self._acting_target = False
        self.precision = precision
        self.frozen_layers = 0
        """Decoder layers at the bottom whose weights (adapter included) never train (``freeze_lower_layers``)."""
        self.register_buffer("action_token_ids", torch.tensor(action_token_ids, dtype=torch.long),
                             persistent=False)

    @property
    def is_peft(self) -> bool:
        return isinstance(self.model, PeftModel)

    @property
    def causal_lm(self) -> nn.Module:
        """The causal LM that acts now (with full fine-tuning, the target copy inside ``using_adapter(TARGET)``)."""
        if not self.is_peft:
            return self.target_model if self._acting_target else self.model
        return self.model.get_base_model()

    @property
    def config(self):
        return self.causal_lm.config

    @property
    def n_actions(self) -> int:
        return len(self.action_token_ids)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., hidden) -> (..., n_actions) Q-values, computed in fp32 (outside any autocast)."""
        with torch.autocast(hidden.device.type, enabled=False):
            if self.q_parameterisation == "value_head":
                return getattr(self.causal_lm, Q_HEAD)(hidden.float())
            weight = self.causal_lm.get_output_embeddings().weight[self.action_token_ids]
            return hidden.float() @ weight.float().T

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache=None, use_cache: bool = False,
                lower_states: torch.Tensor | None = None):
        """Q at ``positions``.

        Args:
            input_ids: (B, L) token ids.
            positions: (B, P) indices into the L new tokens.
            lower_states: (B, L, hidden) the states ``forward_lower`` gave for ``input_ids``: only the layers above
                ``frozen_layers`` run.
        Returns:
            ``(q, cache)``: q is (B, P, n_actions) fp32; the cache is ``None`` unless ``use_cache``.
        """
        decoder = self.causal_lm.get_decoder()
        with autocast(self.precision, input_ids.device.type):
            if lower_states is None:
                out = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                              cache=cache, use_cache=use_cache)
            else:
                with layer_span(decoder, self.frozen_layers):
                    out = decoder(inputs_embeds=lower_states.float(), attention_mask=attention_mask,
                                  position_ids=position_ids, cache=cache, use_cache=use_cache)
        hidden = out.last_hidden_state
        index = positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        q = self.head(torch.gather(hidden, 1, index))
        return q, (out.cache if use_cache else None)

    def forward_lower(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, hidden): the hidden states entering decoder layer ``frozen_layers``, what
        ``forward(lower_states=)`` takes; the same for the online and target networks (those layers never train)."""
        decoder = self.causal_lm.get_decoder()
        with autocast(self.precision, input_ids.device.type), layer_span(decoder, 0, self.frozen_layers, False):
            return decoder(input_ids=input_ids).last_hidden_state

    def freeze_lower_layers(self, trainable_layers: int) -> None:
        """Only the top ``trainable_layers`` decoder layers' trained weights (and the Q head) train from now on: the
        lower layers' and the embeddings' stay as they are, in the online and target networks alike. A count
        beyond the model's layers is refused in one sentence."""
        n_layers = len(decoder_of(self.causal_lm).layers)
        if not 1 <= trainable_layers <= n_layers:
            raise ValueError(f"trainable_layers must be in [1, {n_layers}] (the model's decoder layers), "
                             f"got {trainable_layers}")
        self.frozen_layers = n_layers - trainable_layers
        self.refreeze()

    def refreeze(self) -> None:
        """Freeze the lower layers again (peft's ``set_adapter`` makes a whole adapter trainable)."""
        if self.frozen_layers:
            freeze_below(self.model, self.frozen_layers)

    @contextmanager
    def using_adapter(self, name: str):
        """Run the block with adapter ``name`` (``ONLINE`` or ``TARGET``) active; with full fine-tuning,
        with the online model or its target copy. Trainable flags are restored afterwards."""
        if not self.is_peft:
            self._acting_target = name == TARGET
            try:
                yield self
            finally:
                self._acting_target = False
            return
        flags = {n: p.requires_grad for n, p in self.model.named_parameters()}
        self.model.set_adapter(name)
        try:
            yield self
        finally:
            self.model.set_adapter(ONLINE)
            for n, p in self.model.named_parameters():
                p.requires_grad_(flags[n])

    @contextmanager
    def untrained(self):
        """Run the block with the model as it was before training: adapter off, or the initial weights."""
        if self.is_peft:
            with self.model.disable_adapter():
                yield self
            return
        if self.initial_state is None:
            raise ValueError("this fully fine-tuned network keeps no initial weights to play untrained with")
        if self._initial_weights is None:
            self._initial_weights = self.initial_state() if callable(self.initial_state) else self.initial_state
        trained = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self._initial_weights, strict=False)
        try:
            yield self
        finally:
            self.model.load_state_dict(trained)

    def add_target_adapter(self) -> None:
        """Add the ``target`` adapter (or, with full fine-tuning, the target model) as an exact, frozen copy."""
        if not self.is_peft:
            if self.target_model is None:
                self.target_model = copy.deepcopy(self.model).requires_grad_(False)
            self.polyak_update(tau=1.0)
            return
        if TARGET not in self.model.peft_config:
            self.model.add_adapter(TARGET, self.model.peft_config[ONLINE])
            self.model.set_adapter(ONLINE)
        self.polyak_update(tau=1.0)

    def weights(self, which: str = ONLINE) -> dict[str, nn.Parameter]:
        """The trained weights of the online (``ONLINE``) or target (``TARGET``) network, keyed by names both
        share: the adapter's (Q head included) with peft, every weight of the model or its copy without."""
        if self.is_peft:
            return adapter_parameters(self.model, which)
        return dict((self.model if which == ONLINE else self.target_model).named_parameters())

    @torch.no_grad()
    def polyak_update(self, tau: float) -> None:
        """target <- (1 - tau) * target + tau * online, over ``weights()``."""
        target = self.weights(TARGET)
        for name, p in self.weights(ONLINE).items():
            target[name].lerp_(p.detach().to(target[name].dtype), tau)
            target[name].requires_grad_(False)

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict | None = None,
                                        every_n_layers: int = 1, offload: bool = False) -> None:
        """Checkpoint the base's decoder layers (called by ``Trainer`` when ``activation_checkpointing``)."""
        self.causal_lm.activation_checkpointing_enable(activation_checkpointing_kwargs=activation_checkpointing_kwargs,
                                                       every_n_layers=every_n_layers, offload=offload)
        self.causal_lm.enable_input_require_grads()


def build_q_network(causal_lm: nn.Module, n_actions: int, action_token_ids: list[int], q_parameterisation: str,
                    peft_config: PeftConfig | None, with_target: bool = True) -> QNetwork:
    """Wrap a causal LM: Q head if needed, then the online and target adapters on the frozen base, or, with
    ``peft_config=None``, every weight trainable and a frozen target copy (full fine-tuning)."""
    if len(action_token_ids) != n_actions:
        raise ValueError(f"{len(action_token_ids)} action token ids for {n_actions} actions")
    if q_parameterisation == "value_head":
        add_q_head(causal_lm, n_actions, replace=True)
    if peft_config is None:
        causal_lm.requires_grad_(True)
        initial = {k: v.detach().to("cpu", copy=True) for k, v in causal_lm.state_dict().items()}
        network = QNetwork(causal_lm, q_parameterisation, action_token_ids, initial_state=initial)
    else:
        network = QNetwork(get_peft_model(causal_lm, peft_config), q_parameterisation, action_token_ids)
    if with_target:
        network.add_target_adapter()
    return network


class StoredInBf16Linear(nn.Linear):
    """A frozen ``nn.Linear`` whose weight is stored in bf16: under autocast it is ``nn.Linear``; outside it, its
    input is cast to bf16 and its output back to the input's dtype, so a plain forward or ``generate`` on the model
    runs too."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_autocast_enabled(x.device.type):
            return super().forward(x)
        bias = None if self.bias is None else self.bias.to(self.weight.dtype)
        return nn.functional.linear(x.to(self.weight.dtype), self.weight, bias).to(x.dtype)


def store_frozen_base_in_bf16(model: nn.Module) -> int:
    """Store the frozen linear weights that a peft adapter wraps (its ``base_layer``s) in bf16: what bf16 autocast
    casts them to at every matmul, cast once, so a step of a few tokens does not re-cast the whole model. The
    adapter's own weights, embeddings, norms and the Q head stay as they are (fp32); each cast layer becomes a
    ``StoredInBf16Linear``, which runs outside autocast too. Returns how many weights."""
    cast = 0
    for module in model.modules():
        base = module.get_base_layer() if isinstance(module, BaseTunerLayer) else None
        if isinstance(base, nn.Linear) and not base.weight.requires_grad and base.weight.dtype == torch.float32:
            base.weight.data = base.weight.data.to(torch.bfloat16)
            if type(base) is nn.Linear:
                base.__class__ = StoredInBf16Linear
            cast += 1
    return cast
