"""Widgets of the lab. Each draws from data it is handed; none of them reads the engine or a run directory."""
