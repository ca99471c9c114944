"""Spiking neurons as modules over whole sequences.

Every neuron takes an input current ``[T, B, ...]`` (time first) and returns spikes and membrane
``[T, B, ...]``. When the input is the same at every step (direct encoding of a static image) pass it once
as ``[B, ...]`` with ``time_steps=T``: it is then integrated without being copied T times.

Two paths compute the same thing: ``reference`` steps through time with plain autograd (the equations in
``kernels/reference.py``), ``fused`` runs one custom autograd function over the whole sequence
(``kernels/fused.py``). ``forward`` uses the fused path unless ``fused=False`` or the surrogate is a
plain callable without a closed-form gradient.

For users who loop over time themselves, ``step(input_t, state) -> (spike_t, state)`` runs one step.

Modules: ``base`` (what every neuron shares), ``leaky`` (Leaky, Lapicque), ``synaptic`` (Synaptic, Alpha),
``recurrent`` (RLeaky, RSynaptic), ``parallel`` (LeakyParallel),
``lstm`` (SLSTM, SConv2dLSTM: one path, the step loop over torch's LSTM cell or convolution),
``spikingjelly`` (IF, LIF, PLIF: SpikingJelly's neurons, which fire at ``v >= v_threshold`` and reset in the same
step; not SpikingNeuron subclasses, as they have no beta nor snnTorch's options), ``brainpy`` (BrainPyLIF: BrainPy's
LIF behind its Expon synapse, exponential Euler; Expon: that synapse as a readout that never fires).
"""

from __future__ import annotations

from snnlab import catalog
from snnlab.engine.neurons.base import SpikingNeuron
from snnlab.engine.neurons.brainpy import BrainPyLIF, BrainPyLIFState, Expon, ExponState
from snnlab.engine.neurons.leaky import Lapicque, Leaky, LeakyState
from snnlab.engine.neurons.lstm import SLSTM, LSTMState, SConv2dLSTM
from snnlab.engine.neurons.parallel import LeakyParallel
from snnlab.engine.neurons.recurrent import RLeaky, RLeakyState, RSynaptic, RSynapticState
from snnlab.engine.neurons.spikingjelly import IF, LIF, PLIF, SpikingJellyNeuron, SpikingJellyState
from snnlab.engine.neurons.synaptic import Alpha, AlphaState, Synaptic, SynapticState

__all__ = [
    "IF",
    "LIF",
    "NEURONS",
    "Neuron",
    "PLIF",
    "Alpha",
    "AlphaState",
    "BrainPyLIF",
    "BrainPyLIFState",
    "Expon",
    "ExponState",
    "Lapicque",
    "Leaky",
    "LeakyParallel",
    "LeakyState",
    "LSTMState",
    "RLeaky",
    "RLeakyState",
    "RSynaptic",
    "RSynapticState",
    "SConv2dLSTM",
    "SLSTM",
    "SpikingJellyNeuron",
    "SpikingJellyState",
    "SpikingNeuron",
    "Synaptic",
    "SynapticState",
]

Neuron = SpikingNeuron | SpikingJellyNeuron | Expon  # what a layer of a model may hold

NEURONS: dict[str, type[SpikingNeuron] | type[SpikingJellyNeuron] | type[Expon]] = {
    "leaky": Leaky,
    "synaptic": Synaptic,
    "rleaky": RLeaky,
    "lapicque": Lapicque,
    "alpha": Alpha,
    "rsynaptic": RSynaptic,
    "leaky_parallel": LeakyParallel,
    "slstm": SLSTM,
    "sconv2dlstm": SConv2dLSTM,
    "lif": LIF,
    "if": IF,
    "plif": PLIF,
    "brainpy_lif": BrainPyLIF,
    "expon": Expon,
}
catalog.check_implemented("neuron types", catalog.NEURONS, NEURONS)
