"""Layers with hand-written backpropagation.

The contract, the same for every layer:

* ``forward(x)`` returns ``y`` and caches what ``backward`` needs.
* ``backward(dy)`` returns ``dx = dL/dx`` and *adds* ``dL/dparam`` into the
  layer's gradient arrays -- or, right after the network's ``start_gradients``
  (``grads_stale`` set), *writes* it there, which saves zeroing the buffer and
  one pass over it. It never updates weights (the optimizer does that) and
  never writes into ``dy``.
* A layer keeps only its latest forward's caches, in buffers it reuses from
  step to step, so each ``backward`` belongs to the ``forward`` just before
  it: run them in alternation (forward A, backward A, forward B, backward B).
* Parameters and gradients are views into the owning network's flat buffers,
  handed over by :meth:`Layer.bind`; a layer never allocates its own.
* Every constructor argument is stored as an attribute of the same name, so
  that :meth:`Layer.spec` can describe the layer and :func:`layer_from_spec`
  rebuild it (checkpoints, averaged copies). Subclasses, the user's own
  included, are found by their class name.

``backward(dy, need_dx=False)`` skips the input gradient (the first layer of
a network has no use for it) and ``need_dparams=False`` skips the parameter
gradients (the generator's update needs dL/dx through the discriminator, not
the discriminator's own gradients).
"""

from .activations import LeakyReLU, Maxout, ReLU, Sigmoid, Tanh, sigmoid
from .base import Layer, clone_layer, layer_from_spec
from .batchnorm import BatchNorm, BatchNorm2d
from .conv import Conv2d, ConvTranspose2d
from .dense import Dense
from .dropout import Dropout
from .projection import ProjectionHead
from .shape import Flatten, Reshape

__all__ = [
    "BatchNorm", "BatchNorm2d", "Conv2d", "ConvTranspose2d", "Dense", "Dropout", "Flatten", "Layer", "LeakyReLU",
    "Maxout", "ProjectionHead", "ReLU", "Reshape", "Sigmoid", "Tanh",
    "clone_layer", "layer_from_spec", "sigmoid",
]
