"""A network as a NIR graph (the Neuromorphic Intermediate Representation, the ``nir`` package) and back.

NIR describes neurons in continuous time. snnlab reads and writes them as snnTorch 1.0's ``export_to_nir`` and
``import_from_nir`` do: forward Euler with a time step ``dt``, so that a NIR LIF node
``tau dv/dt = (v_leak - v) + r*I`` becomes, per step, ``v[t] = (1 - dt/tau)*v[t-1] + (r*dt/tau)*I[t]``, and::

    leaky:     beta = 1 - dt/tau          tau = dt/(1 - beta),  r = tau/dt   (the input lands unscaled)
    synaptic:  alpha = 1 - dt/tau_syn     tau_syn = dt/(1 - alpha),  w_in = tau_syn/dt
               beta = 1 - dt/tau_mem      tau_mem = dt/(1 - beta),   r = tau_mem/dt
    expon:     the non-spiking readout, NIR's LI, as leaky without the spike
    reset none: leaky as LI, synaptic as CubaLI, each read by a Threshold node (a spike that resets nothing)
    lapicque:  LIF with tau = R*C, r = R, and dt its time_step (its own Euler step: no conversion at all)
    if:        v[t] = v[t-1] + r*dt*I[t]  r = 1/dt
    lif, plif: SpikingJelly's, tau in steps: tau_nir = tau*dt, v_leak = v_reset, r = 1 (decay_input) or tau

A NIR neuron spikes when ``v > v_threshold`` and at once sets ``v = v_reset``: snnlab's ``reset: zero`` with
``reset_delay: false`` (SpikingJelly's neurons always reset at once; they fire at ``v >= v_threshold``), or
``reset: none`` as above. A subtract or delayed reset has no NIR node, and ``to_nir`` refuses it, naming the
layer. rleaky and rsynaptic travel as snnTorch writes them: a LIF (CubaLIF) in the chain that feeds a dense
``w_rec`` beside it, which feeds it back (a nested subgraph of the two reads too).

The file records ``dt`` in the graph's metadata; snnTorch itself assumes ``dt = 1e-4`` (:data:`SNNTORCH_DT`) and
writes none, so that is the default both ways. A node whose input is scaled (``r*dt/tau`` not 1, as Norse writes
its nodes, with ``r = 1``) is read with the scale folded into the weights that feed it, so that its membrane is
NIR's.

What NIR has no word for, snnlab keeps in metadata: each neuron node's ``snnlab`` entry (JSON: its type and the
training-only settings, surrogate, learned parameters), read back by ``from_nir`` when it is there.

The conventions live here; :mod:`~snnlab.interop.nirexport` writes graphs (``to_nir``) and
:mod:`~snnlab.interop.nirimport` reads them (``from_nir``).
"""

from __future__ import annotations

SNNTORCH_DT = 1e-4  # the step snnTorch's export_to_nir and import_from_nir assume; they write no dt
# Settings of a neuron that only training reads: NIR drops them, the node's metadata keeps them.
TRAINING_SETTINGS = ("surrogate", "surrogate_params", "learn_beta", "learn_threshold", "learn_alpha", "detach_reset",
                     "surrogate_disable")  # fmt: skip


class NIRError(ValueError):
    """A network or graph that cannot be translated; one line naming the layer or node, and why."""
