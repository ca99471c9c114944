"""The headless engine: torch only; never imports textual, typer or rich."""
