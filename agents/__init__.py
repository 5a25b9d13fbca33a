"""SPIRAL: the agent loop, policies (image BC, state BC stand-in), relabelling, update rules, rollouts, annotation."""
