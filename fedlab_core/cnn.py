"""A small CNN with batch norm, for every client at once (one grouped convolution).

The network, for a greyscale ``s x s`` image flattened row-major to ``s*s``
features (``fedlab_core.data.scans``)::

    conv 3x3 (1 -> c)   -> batch norm -> relu -> max-pool 2
    conv 3x3 (c -> 2c)  -> batch norm -> relu -> max-pool 2
    global max pool     -> linear (2c -> 1) -> logit

Global *max* pooling, not average: "is there a lesion anywhere?" is a
question about the strongest response in the image, and averaging over 64
positions drowns a lesion of a few pixels (measured on the synthetic scans:
0.6 test accuracy after 10 epochs with average pooling, 0.88 with max).

**Clients are a batch.** The K clients' images ``(K, n, s*s)`` become one
tensor ``(n, K, s, s)``, client k's images in channel k; each client's
filters are stacked into one weight ``(K*c_out, c_in, 3, 3)``, and
``conv2d(..., groups=K)`` convolves channel group k with client k's filters
only. So one convolution call trains all K models, exactly as K separate
``nn.Conv2d`` would (``tests/test_cnn.py`` checks the training against a
per-client ``nn.Module`` loop).

**Batch norm** (Ioffe & Szegedy, ICML 2015) normalises each channel with the
mean and variance of the current batch while training, and with running
averages of them at test time::

    train: x_hat = (x - mean_B) / sqrt(var_B + eps) * gamma + beta
    running_mean <- (1 - m) running_mean + m mean_B      (m = 0.1, PyTorch)
    running_var  <- (1 - m) running_var  + m var_B * N/(N-1)

The running statistics are part of the flat ``theta`` (at its end, the
``Model.state`` slice) but are not learnt by gradient: their gradient is 0
and ``local_train`` moves them with the update above, using the batch
statistics ``loss_and_grad`` writes into ``state_out``. Each client's
statistics use only its own real rows (padding is masked out). Keeping them in
``theta`` means FedAvg averages them like any parameter (what FedAvg with
batch norm does in practice) and FedBN can keep them at home (Li et al.,
"FedBN", ICLR 2021): ``Model.norm`` marks gamma, beta and the running
statistics.

Batch norm mixes the examples of a batch, so one patient's gradient is not
separable: DP-SGD refuses this model (Opacus refuses ``BatchNorm`` too).

>>> import torch
>>> m = cnn(image_size=8, channels=2)
>>> m.n_params, m.state
(119, slice(107, 119, None))
>>> thetas = m.init(torch.Generator().manual_seed(0), torch.float32).expand(3, -1)
>>> m.apply(thetas, torch.rand(3, 5, 64)).shape
torch.Size([3, 5])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fedlab_core.models import Model, weighted_bce

Tensor = torch.Tensor

BN_EPS = 1e-5


def _layout(c: int):
    """Names and sizes of the pieces of theta, in order; the running statistics last."""
    learnt = [("conv1", c * 9), ("gamma1", c), ("beta1", c),
              ("conv2", 2 * c * c * 9), ("gamma2", 2 * c), ("beta2", 2 * c),
              ("fc_w", 2 * c), ("fc_b", 1)]
    state = [("mean1", c), ("var1", c), ("mean2", 2 * c), ("var2", 2 * c)]
    return learnt + state


def cnn(*, image_size: int, channels: int = 8) -> Model:
    """The CNN above for ``image_size x image_size`` greyscale images, ``channels`` filters
    in the first layer (twice as many in the second)."""
    if image_size < 4:
        raise ValueError(f"image size = {image_size} is not allowed: the CNN pools twice, "
                         "so images must be at least 4 x 4 pixels")
    s, c = image_size, channels
    layout = _layout(c)
    where, start = {}, 0
    for name, size in layout:
        where[name] = slice(start, start + size)
        start += size
    n_params = start
    state = slice(where["mean1"].start, n_params)

    def piece(thetas: Tensor, name: str, *shape: int) -> Tensor:
        return thetas[:, where[name]].reshape(thetas.shape[0], *shape)

    def batch_norm(x: Tensor, K: int, gamma: Tensor, beta: Tensor, *, mean=None, var=None,
                   rows: Tensor | None = None, stats: list | None = None) -> Tensor:
        # x: (n, K*C, H, W). Channel k*C + j is client k's channel j, so plain
        # batch norm over (n, H, W) is every client's own batch norm at once
        n, KC, H, W = x.shape
        C = KC // K
        if mean is not None:                                     # test time: running statistics
            return F.batch_norm(x, mean.reshape(KC), var.reshape(KC), gamma.reshape(KC),
                                beta.reshape(KC), training=False, eps=BN_EPS)
        if bool(rows.all()):
            # every row is real (the usual minibatch): PyTorch's fused kernel
            out = F.batch_norm(x, None, None, gamma.reshape(KC), beta.reshape(KC),
                               training=True, eps=BN_EPS)
            if stats is not None:
                with torch.no_grad():
                    var_b, mean_b = torch.var_mean(x, dim=(0, 2, 3), correction=1)
                stats.append((mean_b.view(K, C), var_b.view(K, C)))
            return out
        # some clients have padding rows here: statistics over each client's real rows only
        x5 = x.view(n, K, C, H, W)
        m = rows.t().to(x.dtype).view(n, K, 1, 1, 1)
        count = (m.sum(0) * H * W).clamp(min=1)                  # (K, 1, 1, 1)
        mean_b = (x5 * m).sum((0, 3, 4), keepdim=True) / count
        var_b = ((x5 - mean_b).square() * m).sum((0, 3, 4), keepdim=True) / count
        if stats is not None:
            unbiased = var_b * count / (count - 1).clamp(min=1)
            stats.append((mean_b.detach().view(K, C), unbiased.detach().view(K, C)))
        x_hat = (x5 - mean_b) / torch.sqrt(var_b + BN_EPS)
        return (x_hat * gamma.view(1, K, C, 1, 1) + beta.view(1, K, C, 1, 1)).view(n, KC, H, W)

    def forward(thetas: Tensor, X: Tensor, *, rows: Tensor | None = None,
                stats: list | None = None) -> Tensor:
        """Logits ``(K, n)``; training mode (batch statistics) when ``rows`` is given."""
        K, n = X.shape[0], X.shape[1]
        x = X.view(K, n, s, s).transpose(0, 1)                   # (n, K, s, s): client k = channel k
        train = rows is not None
        for layer, c_in, c_out in ((1, 1, c), (2, c, 2 * c)):
            w = piece(thetas, f"conv{layer}", c_out, c_in, 3, 3).reshape(K * c_out, c_in, 3, 3)
            x = F.conv2d(x, w, padding=1, groups=K)
            gamma, beta = thetas[:, where[f"gamma{layer}"]], thetas[:, where[f"beta{layer}"]]
            if train:
                x = batch_norm(x, K, gamma, beta, rows=rows, stats=stats)
            else:
                x = batch_norm(x, K, gamma, beta, mean=thetas[:, where[f"mean{layer}"]],
                               var=thetas[:, where[f"var{layer}"]])
            x = F.max_pool2d(torch.relu(x), 2)
        features = F.adaptive_max_pool2d(x, 1).view(n, K, 2 * c)  # global max pool
        return torch.einsum("nkc,kc->kn", features, thetas[:, where["fc_w"]]) + thetas[:, where["fc_b"]]

    def apply(thetas: Tensor, X: Tensor) -> Tensor:
        return forward(thetas, X)

    def loss_and_grad(thetas, X, y, weight, with_loss=True, state_out: Tensor | None = None):
        stats: list = []
        with torch.enable_grad():
            t = thetas.detach().requires_grad_(True)
            loss = weighted_bce(forward(t, X, rows=weight > 0, stats=stats), y, weight)
            (grad,) = torch.autograd.grad(loss.sum(), t)
        if state_out is not None:
            (mean1, var1), (mean2, var2) = stats
            state_out.copy_(torch.cat([mean1, var1, mean2, var2], dim=1))
        return loss.detach(), grad

    def init(gen: torch.Generator, dtype: torch.dtype) -> Tensor:
        # PyTorch's defaults: conv and linear U(-1/sqrt(fan_in), 1/sqrt(fan_in));
        # batch norm gamma 1, beta 0, running mean 0, running variance 1
        def uniform(size, fan_in):
            bound = 1.0 / math.sqrt(fan_in)
            return (torch.rand(size, generator=gen, dtype=torch.float64) * 2 - 1) * bound

        values = {"conv1": uniform(c * 9, 9), "conv2": uniform(2 * c * c * 9, c * 9),
                  "fc_w": uniform(2 * c, 2 * c), "fc_b": uniform(1, 2 * c)}
        parts = []
        for name, size in layout:
            if name in values:
                parts.append(values[name])
            elif name.startswith(("gamma", "var")):
                parts.append(torch.ones(size, dtype=torch.float64))
            else:
                parts.append(torch.zeros(size, dtype=torch.float64))
        return torch.cat(parts).to(dtype)

    head = torch.zeros(n_params, dtype=torch.bool)
    head[where["fc_w"].start:where["fc_b"].stop] = True
    norm = torch.zeros(n_params, dtype=torch.bool)
    for name in ("gamma1", "beta1", "gamma2", "beta2"):
        norm[where[name]] = True
    norm[state] = True
    return Model("cnn", s * s, n_params, apply, init, loss_and_grad,
                 head=head, norm=norm, state=state)
