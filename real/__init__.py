"""Real YAM + D405 station backend with the simulated tasks' spaces. Lands with the real-station issue."""
