"""Figures: training curves from ``Trainer`` logs and in-context curves (success vs episode index).

Figures are drawn on ``matplotlib.figure.Figure`` objects and written with ``savefig``: no pyplot, so importing
this module leaves the caller's matplotlib backend alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .envs.splits import SPLITS

SPLIT_LABELS = {"validation": "validation", "heldout": "held-out"}


def plot_training_curve(log_history: Sequence[Mapping], path: str | os.PathLike) -> None:
    """One panel per kind of log the run wrote, side by side: rollout success (all episodes, episodes 0-9 and
    20-29 of each trial) against optimizer step (online collection only), TD loss against optimizer step, and
    validation (or held-out) final-10 success against minutes (``eval_every_minutes``)."""
    rollout = {label: [(log["step"], log[key]) for log in log_history if key in log]
               for key, label in (("success_rate", "all episodes"), ("success_episodes_0_9", "episodes 0-9"),
                                  ("success_episodes_20_29", "episodes 20-29"))}
    rollout = {label: points for label, points in rollout.items() if points}
    loss = [(log["step"], log["td_loss"]) for log in log_history if "td_loss" in log]
    in_run = {split: [(log["train_minutes"], log[f"{split}_final10"]) for log in log_history
                      if f"{split}_final10" in log] for split in SPLITS}
    in_run = {split: points for split, points in in_run.items() if points}
    panels = [panel for panel, points in (("rollout", rollout), ("loss", loss), ("in_run", in_run)) if points]
    if not panels:
        raise ValueError("the log history holds no rollout success, TD loss or in-run evaluation to plot")
    fig = Figure(figsize=(5 * len(panels), 3.6))
    axes = dict(zip(panels, np.atleast_1d(fig.subplots(1, len(panels)))))
    if rollout:
        for label, points in rollout.items():
            axes["rollout"].plot(*zip(*points), marker=".", label=label)
        axes["rollout"].set(xlabel="optimizer step", ylabel="training-rollout success", ylim=(0, 1))
        axes["rollout"].legend()
    if loss:
        axes["loss"].plot(*zip(*loss), color="tab:red")
        axes["loss"].set(xlabel="optimizer step", ylabel="TD loss", yscale="log")
    if in_run:
        plot_learning_curves({f"{SPLIT_LABELS[split]} maps": points for split, points in in_run.items()},
                             ax=axes["in_run"], ylabel="final-10 success")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_learning_curves(curves: Mapping[str, Sequence[tuple[float, float]]], path: str | os.PathLike | None = None,
                         ax=None, title: str = "", xlabel: str = "minutes of training (wall clock)",
                         ylabel: str = "held-out final-10 success") -> None:
    """Final-10 success against training progress (``xlabel`` names it), one line per run."""
    own = ax is None
    if own:
        fig = Figure(figsize=(6.4, 4))
        ax = fig.subplots()
    for name, points in curves.items():
        ax.plot(*zip(*sorted(points)), marker="o", label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    if own:
        fig.tight_layout()
        fig.savefig(path, dpi=120)


def plot_learning_curve_panels(panels: Mapping[str, Mapping[str, Sequence[tuple[float, float]]]],
                               path: str | os.PathLike, xlabel: str = "minutes of training (wall clock)",
                               columns: int = 3) -> None:
    """``plot_learning_curves`` for several envs in one figure: one panel per env (title -> run -> points)."""
    _save_panels(panels, path, columns, lambda ax, title, curves: plot_learning_curves(curves, ax=ax, title=title,
                                                                                        xlabel=xlabel))


def _draw_icrl_curves(ax, curves: Mapping[str, Mapping], title: str, metric: str) -> None:
    for name, summary in curves.items():
        mean = np.asarray(summary[f"{metric}_per_episode"])
        band = np.asarray(summary[f"{metric}_ci95"])
        episodes = np.arange(len(mean))
        ax.plot(episodes, mean, label=name)
        ax.fill_between(episodes, mean - band, mean + band, alpha=0.2)
    ax.set(xlabel="episode index in context", ylabel=f"{metric} rate" if metric == "success" else metric,
           title=title)
    if metric == "success":
        ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)


def plot_icrl_curves(curves: Mapping[str, Mapping], path: str | os.PathLike, title: str = "",
                     metric: str = "success") -> None:
    """One line per agent: mean ``metric`` per episode index with its 95% band (from ``summarize``)."""
    fig = Figure(figsize=(6.4, 4))
    _draw_icrl_curves(fig.subplots(), curves, title, metric)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_icrl_panels(panels: Mapping[str, Mapping[str, Mapping]], path: str | os.PathLike, columns: int = 3) -> None:
    """``plot_icrl_curves`` for several envs in one figure: one panel per env (title -> agent -> summary)."""
    _save_panels(panels, path, columns, lambda ax, title, curves: _draw_icrl_curves(ax, curves, title, "success"))


def _save_panels(panels: Mapping[str, Mapping], path: str | os.PathLike, columns: int,
                 draw: Callable[[object, str, Mapping], None]) -> None:
    """One panel per entry of ``panels`` (title -> what ``draw(ax, title, value)`` draws), ``columns`` a row."""
    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(5 * columns, 3.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, (title, value) in zip(axes, panels.items()):
        draw(ax, title, value)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


_TILE_COLOURS = {"S": "#9ccc65", "F": "#dbeefa", "H": "#1f3b57", "G": "#ffca28"}


def plot_trajectories(desc: Sequence[str], paths: Mapping[str, Sequence[int]], path: str | os.PathLike,
                      title: str = "") -> None:
    """A Frozen Lake map (S/F/H/G coloured) with tile paths drawn over it, one colour per label.

    ``desc``: rows of the map; ``paths``: label -> tiles visited (``row * ncol + col``), in order.
    """
    nrow, ncol = len(desc), len(desc[0])
    fig = Figure(figsize=(1 + 0.8 * ncol, 0.8 + 0.8 * nrow))
    ax = fig.subplots()
    for r, row in enumerate(desc):
        for c, letter in enumerate(row):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=_TILE_COLOURS[letter],
                                       edgecolor="white"))
            if letter != "F":
                ax.text(c, r, letter, ha="center", va="center", fontsize=9,
                        color="white" if letter == "H" else "black")
    shifts = np.linspace(-0.15, 0.15, len(paths)) if len(paths) > 1 else [0.0]
    for (label, tiles), shift, colour in zip(paths.items(), shifts, ("tab:red", "tab:blue", "tab:purple",
                                                                     "tab:orange"), strict=False):
        rows, cols = np.divmod(np.asarray(tiles), ncol)
        ax.plot(cols + shift, rows + shift, color=colour, marker=".", lw=2, alpha=0.85,
                label=f"{label} ({len(tiles) - 1} moves)")
        ax.plot(cols[0] + shift, rows[0] + shift, color=colour, marker="o", ms=8)
    ax.set(xlim=(-0.5, ncol - 0.5), ylim=(nrow - 0.5, -0.5), xticks=range(ncol), yticks=range(nrow),
           aspect="equal", title=title)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
