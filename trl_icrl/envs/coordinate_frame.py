"""Training maps placed at a random offset inside a larger frame, so that ``coords`` observations name every row
and column of the frame while the maps keep their training shapes (a translation augmentation of the text)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class RandomCoordinateOffset(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Gives each trial's map a random offset ``(row, col)`` inside a ``frame`` x ``frame`` grid (a grid env: one
    with ``nrow`` and ``ncol``).

    The env's observations, rewards and dynamics are unchanged; the codec writes tile ``(r, c)`` as
    ``r{r + row} c{c + col}`` (it reads ``coordinate_offset``). A new offset is drawn, from a generator seeded by
    ``reset(seed=...)``, on every seeded reset (a new trial) and when a map switch (``options``) brings a map that
    the offset would push out of the frame; otherwise episodes keep theirs, across a mid-trial switch too (as the
    non-stationary evaluation's two maps share their coordinates). ``row`` is uniform in ``[0, frame - nrow]``,
    ``col`` in ``[0, frame - ncol]``; with probability ``1 - share`` a trial keeps the origin ``(0, 0)`` instead.
    """

    def __init__(self, env: gym.Env, frame: int, share: float = 1.0):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {share}")
        if not all(hasattr(env.unwrapped, side) for side in ("nrow", "ncol")):
            raise ValueError(f"coordinate offsets need a grid env with nrow and ncol; {env.unwrapped} has none")
        gym.utils.RecordConstructorArgs.__init__(self, frame=frame, share=share)
        gym.Wrapper.__init__(self, env)
        self.frame, self.share = frame, share
        self.coordinate_offset: tuple[int, int] | None = None
        self._rng = np.random.default_rng()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        nrow, ncol = int(self.env.unwrapped.nrow), int(self.env.unwrapped.ncol)
        if max(nrow, ncol) > self.frame:
            raise ValueError(f"a {nrow}x{ncol} map does not fit a frame of side {self.frame}")
        if seed is not None:
            self._rng = np.random.default_rng([seed, 5])
        row, col = self.coordinate_offset or (self.frame, self.frame)
        if seed is not None or row + nrow > self.frame or col + ncol > self.frame:
            self.coordinate_offset = (int(self._rng.integers(self.frame - nrow + 1)),
                                      int(self._rng.integers(self.frame - ncol + 1)))
            if self.share < 1.0 and self._rng.random() >= self.share:
                self.coordinate_offset = (0, 0)
        return obs, info
