"""Bridges to other tools, each behind an optional extra and imported only by the command that needs it.

- :mod:`~snnlab.interop.nirgraph`: a network as a graph of the Neuromorphic Intermediate Representation (NIR,
  ``pip install 'snnlab[nir]'``) and back, with snnTorch's reading of NIR's time constants;
- :mod:`~snnlab.interop.nirfiles`: ``snnlab export`` (a run's checkpoint to a ``.nir`` file) and ``snnlab import``
  (a ``.nir`` file to a run directory that ``snnlab run --resume`` continues).

Importing this package imports nothing.
"""
