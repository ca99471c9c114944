"""Sequence scans for the neurons: ``reference`` (plain autograd, the equations) and ``fused``
(custom autograd over the whole sequence, used by default on CPU and CUDA).
"""
