"""snnlab: a terminal lab for training spiking neural networks with surrogate gradients.

Importing this package is cheap: torch and the faces load only when their modules are imported.
"""

__version__ = "0.1.0"
