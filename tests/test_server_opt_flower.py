"""Our server optimisers against Flower's strategies (flwr 1.42), round by round.

Each round every client returns ``current + noise_k``, so the FedAvg pseudo-
gradient ``Delta_t = sum_k w_k noise_k`` is the same for both implementations
whatever their trajectories. FedAvgM, FedYogi and FedAdagrad then agree
exactly once we start from Flower's ``v = 0`` (the paper starts from
``v = tau^2``) and, for FedAdagrad, drop the first moment as Flower does
(``beta_1 = 0``; the paper keeps it). Flower's FedAdam also rescales its rate in round t by
``sqrt(1 - beta2^(t+1)) / (1 - beta1^(t+1))``, a bias correction the paper
does not have; with that factor applied to our step the two agree.
"""

import numpy as np
import pytest
import torch

flwr = pytest.importorskip("flwr")
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays  # noqa: E402
from flwr.server.strategy import FedAdagrad, FedAdam, FedAvgM, FedYogi  # noqa: E402

from fedlab_core.aggregate import fedavg  # noqa: E402
from fedlab_core.server_opt import (server_adagrad, server_adam, server_momentum,  # noqa: E402
                                    server_yogi)

P, K, ROUNDS = 7, 5, 6


def flower_round(strategy, rnd, current, noise, sizes):
    results = [(None, FitRes(status=Status(code=Code.OK, message=""),
                             parameters=ndarrays_to_parameters([current + noise[k]]),
                             num_examples=int(sizes[k]), metrics={}))
               for k in range(K)]
    params, _ = strategy.aggregate_fit(rnd, results, [])
    return parameters_to_ndarrays(params)[0]


def run_both(strategy, ours, *, seed, rate=lambda t: 1.0):
    rng = np.random.default_rng(seed)
    theta0 = rng.normal(size=P)
    flower_theta, our_theta = theta0.copy(), torch.tensor(theta0)
    state = ours.init(our_theta)
    for t in range(1, ROUNDS + 1):
        noise, sizes = rng.normal(size=(K, P)), rng.integers(5, 100, size=K)
        new_flower = flower_round(strategy, t, flower_theta, noise, sizes)
        delta = fedavg(torch.tensor(noise), torch.tensor(sizes, dtype=torch.float64))
        new_ours, state = ours.step(our_theta, delta, state)
        np.testing.assert_allclose(new_flower - flower_theta,
                                   rate(t) * (new_ours - our_theta).numpy(), rtol=1e-6, atol=1e-9)
        flower_theta, our_theta = new_flower, new_ours


def initial(seed):
    return ndarrays_to_parameters([np.random.default_rng(seed).normal(size=P)])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fedavgm(seed):
    strategy = FedAvgM(initial_parameters=initial(seed), server_learning_rate=0.7,
                       server_momentum=0.9)
    run_both(strategy, server_momentum(lr=0.7, momentum=0.9), seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fedyogi(seed):
    strategy = FedYogi(initial_parameters=initial(seed), eta=0.05, beta_1=0.9, beta_2=0.99, tau=1e-3)
    run_both(strategy, server_yogi(lr=0.05, beta1=0.9, beta2=0.99, tau=1e-3, v0=0.0), seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fedadagrad(seed):
    # Flower's FedAdagrad has no first moment (beta_1 = 0); the paper's Algorithm 2
    # keeps m_t with beta_1 for all three adaptive servers, and so does ours by default
    strategy = FedAdagrad(initial_parameters=initial(seed), eta=0.05, tau=1e-3)
    run_both(strategy, server_adagrad(lr=0.05, beta1=0.0, tau=1e-3, v0=0.0), seed=seed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fedadam_differs_by_flowers_bias_correction_only(seed):
    eta, b1, b2 = 0.05, 0.9, 0.99
    strategy = FedAdam(initial_parameters=initial(seed), eta=eta, beta_1=b1, beta_2=b2, tau=1e-3)
    flower_rate = lambda t: eta * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))  # noqa: E731
    run_both(strategy, server_adam(lr=1.0, beta1=b1, beta2=b2, tau=1e-3, v0=0.0), seed=seed,
             rate=flower_rate)


def test_paper_start_differs_from_flowers():
    """Our default v0 = tau^2 (the paper) is not Flower's v0 = 0: the first step differs."""
    delta = torch.tensor([1e-3])
    paper, _ = server_adam(lr=1.0, tau=1e-3).step(torch.zeros(1), delta, server_adam().init(torch.zeros(1)))
    flower_like, _ = server_adam(lr=1.0, tau=1e-3, v0=0.0).step(
        torch.zeros(1), delta, server_adam(v0=0.0).init(torch.zeros(1)))
    assert not torch.allclose(paper, flower_like)
