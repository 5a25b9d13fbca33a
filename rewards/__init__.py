"""Reward-model backends behind one interface (see DESIGN.md §3). Lands with the reward-core issue."""
