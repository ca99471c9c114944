"""Bridges to other tools, each behind an optional extra and imported only by the command that needs it.

- :mod:`~snnlab.interop.nirgraph`: how snnlab reads NIR (the Neuromorphic Intermediate Representation,
  ``pip install 'snnlab[nir]'``): snnTorch's Euler reading of its time constants; :mod:`~snnlab.interop.nirexport`
  (a network as a NIR graph) and :mod:`~snnlab.interop.nirimport` (a NIR graph as layers and weights);
- :mod:`~snnlab.interop.nirfiles`: ``snnlab export`` (a run's checkpoint to a ``.nir`` file) and ``snnlab import``
  (a ``.nir`` file to a run directory that ``snnlab run --resume`` continues);
- :mod:`~snnlab.interop.tensorboard`: the TensorBoard sink (``pip install 'snnlab[tensorboard]'``), with
  :mod:`~snnlab.interop.loggers` choosing the sinks that ``run.loggers`` names.

Importing this package imports nothing.
"""
