"""The reward path: how a trial's logged rewards become its TD targets, in one order.

``env scale -> goal reward -> clip -> reward_scale -> n-step (double) DQN target``: ``RewardPath.targets`` applies
them all to a batch of trials (``td_targets`` is the last step alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ..protocol import CONTINUE, TERMINATED

if TYPE_CHECKING:
    from ..envs.spec import EnvSpec

REWARD_CLIPS = {"max": None, "horizon": "unit", "sign": "sign", "goal": None, "none": None}
"""Each ``reward_normalisation`` and the clip ``RewardPath`` applies after scaling (None, ``"sign"``, ``"unit"``)."""
REWARD_NORMALISATIONS = tuple(REWARD_CLIPS)

__all__ = ["REWARD_CLIPS", "REWARD_NORMALISATIONS", "RewardPath", "env_goal_reward", "env_reward_scale", "td_targets"]


def env_reward_scale(reward_values: Sequence[float], normalisation: str, gamma: float) -> float:
    """An env's reward multiplier in the TD targets, from its non-zero rewards (``EnvCodec.reward_values``):
    1 / the largest |reward| for ``"max"`` and ``"goal"``; for ``"horizon"`` that, or (1 - gamma) / the smallest
    |reward| where larger (a step cost that adds up over the discount horizon to a goal's 1; the targets are then
    clipped to [-1, 1]); 1 otherwise."""
    magnitudes = [abs(r) for r in reward_values if r] or [1.0]
    if normalisation in ("max", "goal"):
        return 1.0 / max(magnitudes)
    if normalisation == "horizon":
        return max(1.0 / max(magnitudes), (1.0 - gamma) / min(magnitudes))
    return 1.0


def env_goal_reward(reward_values: Sequence[float], normalisation: str) -> float:
    """The reward added to an env's terminal steps in the TD targets: 1 under ``"goal"`` for an env with no positive
    reward (it ends episodes only at its goal: the cliff walkings), 0 otherwise."""
    return 1.0 if normalisation == "goal" and not any(r > 0 for r in reward_values) else 0.0


@dataclass(frozen=True)
class RewardPath:
    """How a batch of trials' logged rewards become TD targets, in one order: each reward multiplied by its env's
    entry in ``env_scales`` (env id -> factor; the envs in the trainer's order), its env's entry in
    ``goal_rewards`` added at its terminal steps, then replaced by their signs (``clip="sign"``) or clipped to
    [-1, 1] (``"unit"``), then multiplied by ``reward_scale`` (the paper's 30), then summed into n-step (double) DQN
    targets with ``gamma`` (``td_targets``)."""

    env_scales: Mapping[str, float]
    goal_rewards: Mapping[str, float] = field(default_factory=dict)
    clip: str | None = None
    reward_scale: float = 1.0
    gamma: float = 0.9
    n_step: int = 1
    double_dqn: bool = True

    def __post_init__(self):
        if self.clip not in set(REWARD_CLIPS.values()):
            raise ValueError(f"reward_clip must be None, 'sign' or 'unit', got {self.clip!r}")

    @classmethod
    def of_specs(cls, specs: Mapping[str, EnvSpec], normalisation: str, **kwargs) -> RewardPath:
        """The path of a run on these envs (env id -> ``EnvSpec``) under a ``reward_normalisation`` (``kwargs``:
        ``reward_scale``, ``gamma``, ``n_step``, ``double_dqn``)."""
        return cls({e: s.reward_scale for e, s in specs.items()}, {e: s.goal_reward for e, s in specs.items()},
                   REWARD_CLIPS[normalisation], **kwargs)

    def env_index(self, env_ids: Sequence[str]) -> torch.Tensor:
        """(B,) each trial's env as its place in ``env_scales``; one sentence for an env not trained on."""
        order = {env_id: i for i, env_id in enumerate(self.env_scales)}
        unknown = set(env_ids) - set(order)
        if unknown:
            raise ValueError(f"replay trials of {sorted(unknown)}, an env this trainer does not train on "
                             f"({sorted(order)})")
        return torch.tensor([order[e] for e in env_ids], dtype=torch.long)

    def rewards(self, rewards: torch.Tensor, dones: torch.Tensor, env_index: torch.Tensor) -> torch.Tensor:
        """(B, D) logged rewards and dones of trials of envs ``env_index`` (B,) -> the (B, D) rewards their TD
        targets sum."""
        scales = torch.tensor(list(self.env_scales.values()), dtype=rewards.dtype, device=rewards.device)
        goals = torch.tensor([self.goal_rewards.get(e, 0.0) for e in self.env_scales], dtype=rewards.dtype,
                             device=rewards.device)
        rewards = rewards * scales[env_index].unsqueeze(1) + goals[env_index].unsqueeze(1) * (dones == TERMINATED)
        if self.clip == "sign":
            rewards = rewards.sign()
        elif self.clip == "unit":
            rewards = rewards.clamp(-1.0, 1.0)
        return rewards * self.reward_scale

    def targets(self, rewards: torch.Tensor, dones: torch.Tensor, mask: torch.Tensor, env_index: torch.Tensor,
                next_q_online: torch.Tensor, next_q_target: torch.Tensor) -> torch.Tensor:
        """(B, D) TD targets of logged (B, D) ``rewards``, ``dones``, ``mask`` of envs ``env_index`` (B,), from the
        (B, D, A) Q-values of the state after each decision."""
        return td_targets(self.rewards(rewards, dones, env_index), dones, mask, next_q_online, next_q_target,
                          self.gamma, self.n_step, self.double_dqn)


def td_targets(rewards: torch.Tensor, dones: torch.Tensor, mask: torch.Tensor, next_q_online: torch.Tensor,
               next_q_target: torch.Tensor, gamma: float, n_step: int = 1, double_dqn: bool = True) -> torch.Tensor:
    """n-step (double) DQN targets for every decision of a batch of trials.

    ``y_d = sum_{k<m} gamma^k r_{d+k} + gamma^m * Q_target(s', argmax_a Q_online(s', a)) * [s' not terminal]``,
    with ``m = min(n_step, steps left in the episode)`` and ``s'`` the state after step ``d+m-1``.

    Args:
        rewards, dones, mask: (B, D) per decision (``rewards`` as ``RewardPath.rewards`` gives them); ``dones`` in
            {CONTINUE, TERMINATED, TRUNCATED}.
        next_q_online, next_q_target: (B, D, A) Q of the state after each decision.
    Returns:
        (B, D) targets (zero where ``mask`` is False).
    """
    greedy = (next_q_online if double_dqn else next_q_target).argmax(-1, keepdim=True)
    next_value = next_q_target.gather(-1, greedy).squeeze(-1) * (dones != TERMINATED)
    steps = torch.arange(rewards.shape[1], device=rewards.device)
    targets = torch.zeros_like(rewards)
    running = mask.float()  # 1 while the n-step sum of decision d is still accumulating
    for k in range(n_step):
        index = (steps + k).clamp(max=rewards.shape[1] - 1).expand_as(rewards)
        valid = mask.gather(1, index) & (steps + k < rewards.shape[1])
        running = running * valid
        targets = targets + running * gamma**k * rewards.gather(1, index)
        stop = (dones.gather(1, index) != CONTINUE) | (k == n_step - 1)
        targets = targets + running * stop * gamma ** (k + 1) * next_value.gather(1, index)
        running = running * ~stop
    return targets * mask
