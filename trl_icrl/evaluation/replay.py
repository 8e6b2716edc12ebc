"""A replay anyone can watch: one map played through many episodes in one context, as an animated GIF."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..envs import ParametricFrozenLake


def replay_frames(desc: Sequence[str], actions: Sequence[int], lengths: Sequence[int], successes: Sequence[float],
                  reset_seed: int) -> list[tuple[np.ndarray, int, float]]:
    """Replays ``actions`` (all episodes, back to back) on ``desc`` rendered as ``rgb_array``, resetting after each
    of ``lengths`` steps: ``(frame (H, W, 3) uint8, episode index, that episode's success)`` per frame, the start of
    each episode included. Raises ``ValueError`` if the replay does not end the episodes as the play did."""
    if sum(lengths) != len(actions):
        raise ValueError(f"{len(actions)} actions for episodes of {sum(lengths)} steps: the context dropped episodes")
    env = ParametricFrozenLake(desc=list(desc), render_mode="rgb_array")
    frames, step = [], 0
    for episode, (length, success) in enumerate(zip(lengths, successes)):
        env.reset(seed=reset_seed if episode == 0 else None)
        frames.append((env.render(), episode, success))
        reward = 0.0
        for action in actions[step:step + length]:
            _, reward, *_ = env.step(action)
            frames.append((env.render(), episode, success))
        step += length
        if reward != success:
            raise ValueError(f"episode {episode} replayed to reward {reward}, the play recorded {success}")
    env.close()
    return frames


def write_replay_gif(frames: Sequence[tuple[np.ndarray, int, float]], path: str | os.PathLike,
                     n_episodes: int, fps: int = 4, title: str = "") -> Path:
    """Writes ``frames`` (from :func:`replay_frames`) as a GIF with the episode index and its outcome on each."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2, 3.6))
    ax = fig.subplots()
    ax.axis("off")
    image = ax.imshow(frames[0][0])
    label = ax.set_title("")
    fig.suptitle(title, fontsize=8)

    def draw(i: int):
        frame, episode, success = frames[i]
        image.set_data(frame)
        label.set_text(f"episode {episode + 1}/{n_episodes}: {'success' if success else 'failure'}")
        label.set_color("green" if success else "firebrick")
        return image, label

    path = Path(path)
    FuncAnimation(fig, draw, frames=len(frames), blit=False).save(path, writer=PillowWriter(fps=fps))
    return path
