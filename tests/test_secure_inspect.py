"""The server's view of a round and the cost table: what the notebook shows is what was measured."""

import numpy as np
import pytest

from fedlab_core.secure.inspect import protocol_costs, server_view
from fedlab_core.viz_secure import cost_figure, server_view_figure


def updates(n=6, P=300, seed=0):
    return np.random.default_rng(seed).normal(0, 0.1, size=(n, P))


def test_the_server_sees_noise_from_a_hospital_and_the_exact_sum_of_the_survivors():
    x = np.zeros((6, 2000))
    x[:, :1000] = 0.5                        # a very structured update
    view = server_view(x, hospital=1, drop_before_masking=[4], seed=3)
    assert view.survivors == [0, 1, 2, 3, 5] and view.dropped == [4]
    assert view.uniformity_p > 0.01          # indistinguishable from uniform on the ring
    assert abs(view.correlation) < 0.1       # and carries no trace of the update's shape
    assert view.max_error <= view.error_bound
    np.testing.assert_allclose(view.recovered, x[view.survivors].sum(0), atol=view.error_bound)
    assert any("dropped" in line for line in view.log)
    assert server_view_figure(view).layout.meta["fedlab"] == "server_view_figure"


def test_inspecting_a_hospital_that_dropped_is_refused():
    with pytest.raises(ValueError, match="hospital = 2 is not allowed: it dropped out"):
        server_view(updates(), hospital=2, drop_before_masking=[2])


def test_protocol_costs_measure_every_protocol_within_the_encoding_bound():
    table = protocol_costs(updates(n=5, P=31), dropped=[3], key_bits=512)
    assert list(table["protocol"]) == ["plain", "masking", "masking, SecAgg+ graph",
                                       "Paillier, one value per ciphertext", "Paillier, packed"]
    assert (table["max error vs plain sum"] < 1e-6).all()
    by = table.set_index("protocol")["bytes per hospital"]
    assert by["plain"] == 31 * 4
    assert by["Paillier, one value per ciphertext"] == 31 * 128     # 512-bit key: 128-byte ciphertexts
    assert by["Paillier, packed"] < by["Paillier, one value per ciphertext"]
    assert by["masking"] > by["plain"]
    assert cost_figure(table).layout.meta["fedlab"] == "cost_figure"
    with pytest.raises(ValueError, match="protocols: 'tls' is not allowed"):
        protocol_costs(updates(), protocols=["tls"])
