"""Bridges to other tools, each behind an optional extra and imported only when it is used."""
