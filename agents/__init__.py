"""SPIRAL agent, policies and update rules. Lands with the SPIRAL issue."""
