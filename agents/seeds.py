"""The seed plan of a SPIRAL run: which env seeds each round's rollouts and the evaluation use.

Rollout seeds of round ``r`` start at ``seed + ROLLOUT_SEED_BASE + r * ROUND_SEED_STRIDE``; evaluation seeds at
``seed + EVAL_SEED_BASE``, the same for every round (so rounds are compared on the same episodes). The ranges
never overlap while a round holds fewer than ``ROUND_SEED_STRIDE`` episodes, which the configs check.
"""

from __future__ import annotations

ROLLOUT_SEED_BASE = 1_000_000
ROUND_SEED_STRIDE = 10_000
EVAL_SEED_BASE = 2_000_000


class RoundSeeds:
    """Mixin of a run config with ``seed``, ``rollouts_per_round`` and ``eval_episodes``."""

    seed: int
    rollouts_per_round: int
    eval_episodes: int

    def rollout_seeds(self, round_index: int) -> list[int]:
        """The env seeds of round ``round_index``'s rollouts (disjoint from every other round and the evaluation)."""
        start = self.seed + ROLLOUT_SEED_BASE + round_index * ROUND_SEED_STRIDE
        return list(range(start, start + self.rollouts_per_round))

    def eval_seeds(self) -> list[int]:
        """The evaluation seeds, the same for every round."""
        start = self.seed + EVAL_SEED_BASE
        return list(range(start, start + self.eval_episodes))
