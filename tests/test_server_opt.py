"""Server optimisers: hand-computed steps, the registry, and a run with each."""

import pytest
import torch

from fedlab_core.config import SERVER_OPTIMIZERS, ExperimentConfig
from fedlab_core.server_opt import (SERVER_OPTIMIZERS as REGISTRY, make_server_optimizer,
                                   server_adagrad, server_adam, server_momentum, server_sgd,
                                   server_yogi)
from fedlab_core.simulation import Simulation

D = torch.tensor([0.5, -2.0], dtype=torch.float64)
ZERO = torch.zeros(2, dtype=torch.float64)


def one_step(opt):
    return opt.step(ZERO, D, opt.init(ZERO))


def test_config_names_match_the_registry():
    assert tuple(REGISTRY) == SERVER_OPTIMIZERS


def test_momentum_zero_is_sgd():
    a, _ = one_step(server_momentum(lr=0.7, momentum=0.0))
    b, _ = one_step(server_sgd(lr=0.7))
    torch.testing.assert_close(a, b)


def test_adam_first_step_by_hand():
    lr, b1, b2, tau = 0.1, 0.9, 0.99, 1e-3
    theta, state = one_step(server_adam(lr=lr, beta1=b1, beta2=b2, tau=tau))
    m = (1 - b1) * D
    v = b2 * tau ** 2 + (1 - b2) * D ** 2          # the paper starts from v = tau^2
    torch.testing.assert_close(theta, lr * m / (v.sqrt() + tau))
    torch.testing.assert_close(state.v, v)


def test_yogi_and_adagrad_first_step_by_hand():
    tau = 1e-3
    _, yogi = one_step(server_yogi(beta2=0.99, tau=tau))
    # v0 = tau^2 < Delta^2, so sign(v - Delta^2) = -1 and v grows by (1 - beta2) Delta^2
    torch.testing.assert_close(yogi.v, tau ** 2 + 0.01 * D ** 2)
    _, ada = one_step(server_adagrad(tau=tau))
    torch.testing.assert_close(ada.v, tau ** 2 + D ** 2)


def test_yogi_shrinks_v_towards_small_updates():
    opt = server_yogi(beta2=0.9, v0=4.0)
    _, state = opt.step(ZERO, torch.full((2,), 1.0, dtype=torch.float64), opt.init(ZERO))
    torch.testing.assert_close(state.v, torch.full((2,), 4.0 - 0.1, dtype=torch.float64))


def test_steps_do_not_mutate_their_inputs():
    opt = server_adam()
    state = opt.init(ZERO)
    before = (state.m.clone(), state.v.clone())
    opt.step(ZERO, D, state)
    torch.testing.assert_close(state.m, before[0])
    torch.testing.assert_close(state.v, before[1])


@pytest.mark.parametrize("name", SERVER_OPTIMIZERS)
def test_every_server_optimizer_learns(name):
    cfg = ExperimentConfig().with_overrides({"data.n_samples": 600, "federation.rounds": 8,
                                             "federation.server_optimizer": name})
    history = Simulation(cfg).run()
    losses = history.series("global", "loss")
    assert losses[-1] < losses[0]


def test_default_learning_rates():
    fed = ExperimentConfig().federation
    assert fed.server_lr is None
    theta, _ = make_server_optimizer(fed).step(ZERO, D, None)
    torch.testing.assert_close(theta, D)  # sgd at rate 1 is plain FedAvg
