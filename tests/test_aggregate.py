"""Contract tests run over every registered aggregator, plus hand-computed cases."""

import pytest
import torch

from fedlab_core.aggregate import AGGREGATORS, fedavg, get_aggregator, unweighted_mean

NAMES = sorted(AGGREGATORS)


def random_updates(K=7, P=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(K, P, generator=g, dtype=torch.float64), torch.rand(K, generator=g, dtype=torch.float64) + 0.5


@pytest.mark.parametrize("name", NAMES)
def test_shape(name):
    deltas, weights = random_updates()
    assert AGGREGATORS[name](deltas, weights).shape == (5,)


@pytest.mark.parametrize("name", NAMES)
def test_permutation_invariant(name):
    deltas, weights = random_updates()
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(AGGREGATORS[name](deltas, weights),
                               AGGREGATORS[name](deltas[perm], weights[perm]))


@pytest.mark.parametrize("name", NAMES)
def test_identical_updates_give_that_update(name):
    row = torch.tensor([1.0, -2.0, 3.5], dtype=torch.float64)
    deltas = row.expand(6, -1).clone()
    torch.testing.assert_close(AGGREGATORS[name](deltas, torch.arange(1.0, 7.0, dtype=torch.float64)), row)


@pytest.mark.parametrize("name", NAMES)
def test_single_client(name):
    deltas, weights = random_updates(K=1)
    torch.testing.assert_close(AGGREGATORS[name](deltas, weights), deltas[0])


def test_fedavg_hand_computed():
    deltas = torch.tensor([[0.0, 10.0], [4.0, 2.0]])
    # weights 1 and 3: (1*[0,10] + 3*[4,2]) / 4 = [3, 4]
    torch.testing.assert_close(fedavg(deltas, torch.tensor([1.0, 3.0])), torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(unweighted_mean(deltas, torch.tensor([1.0, 3.0])), torch.tensor([2.0, 6.0]))


def test_fedavg_with_equal_weights_is_the_mean():
    deltas, _ = random_updates()
    torch.testing.assert_close(fedavg(deltas, torch.ones(7, dtype=torch.float64)), deltas.mean(0))


def test_unknown_aggregator():
    with pytest.raises(ValueError, match="federation.aggregator = 'krum2' is not allowed: choose one of"):
        get_aggregator("krum2")
