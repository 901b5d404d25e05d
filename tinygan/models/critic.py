"""One discriminator update for any objective: loss gradients, gradient penalties, clipping, spectral norms.

:class:`Critic` computes D's gradients for the configured objective (:mod:`tinygan.engine.objectives`)
on a batch of data and one of generated samples, then adds what keeps D Lipschitz or smooth:

* ``loss="wgan-gp"``: ``λ·mean(‖∇ₓD(x̂)‖ − 1)²`` at ``x̂ = εx + (1 − ε)G(z)``, ``ε ~ U[0, 1]``
  per sample, drawn on the device (Gulrajani et al., 2017);
* ``r1_gamma = γ > 0``: ``γ/2·mean ‖∇ₓD(x)‖²`` on the data (Mescheder et al., 2018), with any loss;
* ``loss="wgan"``: every D parameter clipped to ``[−c, c]`` after the update (Arjovsky et al., 2017);
* ``d_spectral_norm``: one power iteration per D update (:mod:`tinygan.engine.spectral`).

A conditional D in the concat form takes the class's one-hot beside the image; ``input_mask`` (1 on
the image's columns, 0 on the one-hot's) restricts both penalties to the gradient with respect to
the image: ``P(m ⊙ g)``, whose gradient with respect to ``g`` is ``m ⊙ ∂P/∂g``.

Both penalties need the gradient of a function of ``∇ₓD`` with respect to D's parameters, from
:class:`tinygan.engine.double_backward.InputGradient`; a critic that holds a layer it cannot handle is
refused when the model is built.
"""

from __future__ import annotations

from typing import Any

from ..backend import Array, Workspace, writes_out
from ..engine.double_backward import InputGradient
from ..engine.network import Sequential
from ..engine.objectives import d_fake_loss, d_real_loss, gp_penalty, r1_penalty
from ..engine.spectral import power_iterations


def penalised(config: Any) -> bool:
    """Whether D's loss holds a gradient penalty."""
    return config.loss == "wgan-gp" or config.r1_gamma > 0


class Critic:
    """D's update for ``config``'s objective; ``rng`` draws WGAN-GP's interpolation weights on the device;
    ``input_mask`` (``(1, n_in)``, or ``None`` for all of D's input) says which input columns the penalties see."""

    def __init__(self, config: Any, net: Sequential, rng: Any, input_mask: Array | None = None) -> None:
        self.config, self.net, self.rng, self.input_mask = config, net, rng, input_mask
        self.xp = net.backend.xp
        self.input_gradient = InputGradient(net) if penalised(config) else None
        self.work = Workspace(self.xp)

    def buffers(self) -> list[Array]:
        """Arrays reused from step to step (for a recorded step to keep alive)."""
        own = list(self.work.arrays.values())
        return own if self.input_gradient is None else own + list(self.input_gradient.work.arrays.values())

    def begin_update(self) -> None:
        """Before each D update: one power iteration in every spectrally normalised layer (given ones too)."""
        power_iterations(self.net.layers)

    def gradients(self, real: Array, fake: Array) -> tuple[Array, Array, Array, Array | None]:
        """D's gradients of its loss on packed ``real`` and ``fake`` (a constant here), penalty included.

        Returns the loss (penalty included), both outputs and the penalty (``None`` without one).
        """
        D, c = self.net, self.config  # read at every step: a resumed run may change real_label
        D.start_gradients()
        a_real = D.forward(real)
        loss_real, grad = d_real_loss(c.loss, c.real_label)(a_real)
        D.backward(grad, need_dx=False)
        a_fake = D.forward(fake)
        loss_fake, grad = d_fake_loss(c.loss)(a_fake)
        D.backward(grad, need_dx=False)
        loss = loss_real + loss_fake
        penalty = None
        if c.loss == "wgan-gp":
            penalty = self._penalise(self._interpolates(real, fake), gp_penalty, c.gp_weight)
        if c.r1_gamma > 0:
            r1 = self._penalise(real, r1_penalty, c.r1_gamma)
            penalty = r1 if penalty is None else penalty + r1
        return (loss if penalty is None else loss + penalty), a_real, a_fake, penalty

    def _interpolates(self, real: Array, fake: Array) -> Array:
        """``x̂ = fake + ε (real − fake)`` with one ``ε ~ U[0, 1]`` per row."""
        eps = self.rng.uniform((real.shape[0], 1), real.dtype, out=self.work.get("eps", (real.shape[0], 1), real.dtype))
        x_hat = real - fake
        x_hat *= eps
        x_hat += fake
        return x_hat

    def _penalise(self, x: Array, penalty: Any, weight: float) -> Array:
        """Add ``∂P/∂θ`` for ``P = penalty(∇ₓD(x))`` into D's gradients; returns ``P``."""
        g = self.input_gradient.forward(x)
        if self.input_mask is not None:
            g = g * self.input_mask
        value, g_bar = penalty(g, weight)
        self.input_gradient.backward(g_bar if self.input_mask is None else g_bar * self.input_mask)
        return value

    def end_update(self) -> None:
        """After each D update: WGAN's weight clipping."""
        c = self.config.wgan_clip
        if self.config.loss != "wgan" or not c:
            return
        p = self.net.params
        if writes_out(self.xp):
            self.xp.clip(p, -c, c, out=p)
        else:
            p[...] = self.xp.clip(p, -c, c)
