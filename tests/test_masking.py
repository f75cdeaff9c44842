"""Pairwise-masking secure aggregation (fedlab_core.secure.masking): exact sums, dropouts, secrecy, cost."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from fedlab_core.secure.graph import default_degree, neighbour_graph
from fedlab_core.secure.masking import Client, Server, secure_sum
from fedlab_core.secure.prg import prg_words
from fedlab_core.secure.quantize import Encoding
from fedlab_core.secure.randomness import byte_source
from fedlab_core.secure.shamir import combine_shares, split_secret


def _inputs(n, p, *, seed=0, clip=1.0, bits=32):
    enc = Encoding(clip=clip, n_clients=n, bits=bits)
    real = np.random.default_rng(seed).uniform(-clip, clip, size=(n, p))
    return enc, real, enc.encode(real)


def _to_stage_2(x, *, bits=32, threshold, graph="complete", degree=None, seed=b"test",
                before_masking=()):
    """Drive stages 0-2 by hand (clients in ``before_masking`` never send their input)."""
    master = byte_source(seed)
    n, p = x.shape
    server = Server(n_params=p, threshold=threshold, bits=bits, graph=graph, degree=degree, rng=master.spawn())
    clients = [Client(u, rng=master.spawn()) for u in range(n)]
    for c in clients:
        server.receive_keys(c.id, c.advertise_keys())
    rosters = server.broadcast_roster()
    for c in clients:
        server.receive_shares(c.id, c.share_keys(rosters[c.id]))
    inbox = server.forward_shares()
    for c in clients:
        if c.id not in before_masking:
            server.receive_masked(c.id, c.masked_input(x[c.id], inbox[c.id]))
    return server, clients


def _round(x, *, bits=32, threshold, graph="complete", degree=None, seed=b"test", before_masking=(),
           before_unmasking=()):
    """Drive the stages by hand; return the server and the clients (for instrumented tests)."""
    server, clients = _to_stage_2(x, bits=bits, threshold=threshold, graph=graph, degree=degree,
                                  seed=seed, before_masking=before_masking)
    requests = server.start_unmasking()
    for u, (alive, gone) in requests.items():
        if u not in before_unmasking:
            server.receive_unmask(u, clients[u].unmask(alive, gone))
    return server, clients


# -- the sum is exact --------------------------------------------------------------------------------

@pytest.mark.parametrize("graph, degree", [("complete", None), ("harary", 4)])
def test_exact_ring_sum_without_dropouts(graph, degree):
    enc, real, x = _inputs(8, 50)
    res = secure_sum(x, encoding=enc, threshold=3, graph=graph, degree=degree, rng=b"exact")
    assert res.survivors == tuple(range(8)) and res.dropped == ()
    np.testing.assert_array_equal(res.total, enc.sum(x))
    assert res.total.dtype == np.uint64
    assert np.abs(res.decoded - real.sum(0)).max() <= enc.error_bound
    for u in range(8):   # nothing the server received equals an input
        assert (res.masked[u] != x[u]).mean() > 0.99


def test_real_inputs_are_encoded_and_16_bit_ring_works():
    enc = Encoding(clip=0.5, n_clients=4, bits=16)
    real = np.random.default_rng(1).uniform(-0.5, 0.5, size=(4, 20))
    res = secure_sum(real, encoding=enc, threshold=2, rng=1)
    np.testing.assert_array_equal(res.total, enc.sum(enc.encode(real)))
    assert int(res.total.max()) < 2 ** 16 and res.bytes_sent_by_stage[0][2] == 2 * 20


def test_up_to_n_minus_t_dropouts_before_masking():
    enc, _, x = _inputs(8, 30)
    res = secure_sum(x, encoding=enc, threshold=5, drop_before_masking=[1, 4, 6], rng=b"d")
    assert res.survivors == (0, 2, 3, 5, 7) and res.dropped == (1, 4, 6)
    np.testing.assert_array_equal(res.total, enc.sum(x[list(res.survivors)]))
    with pytest.raises(ValueError, match=r"only 4 masked inputs reached the server; threshold t = 5"):
        secure_sum(x, encoding=enc, threshold=5, drop_before_masking=[1, 2, 4, 6], rng=b"d")


def test_harary_recovers_a_dropout():
    enc, _, x = _inputs(10, 30)
    res = secure_sum(x, encoding=enc, threshold=3, graph="harary", degree=4, drop_before_masking=[7], rng=b"h")
    np.testing.assert_array_equal(res.total, enc.sum(x[list(res.survivors)]))
    assert 7 not in res.survivors


def test_dropouts_before_unmasking_stay_in_the_sum():
    enc, _, x = _inputs(6, 30)
    res = secure_sum(x, encoding=enc, threshold=4, drop_before_unmasking=[1, 2], rng=b"u")
    assert res.survivors == tuple(range(6))
    np.testing.assert_array_equal(res.total, enc.sum(x))
    assert res.bytes_sent_by_stage[1][3] == 0 and res.bytes_sent_by_stage[0][3] > 0


def test_dropouts_at_every_stage_together():
    enc, _, x = _inputs(9, 30)
    res = secure_sum(x, encoding=enc, threshold=4, drop_before_sharing=[3], drop_before_masking=[0, 8],
                     drop_before_unmasking=[5], rng=b"all")
    assert res.survivors == (1, 2, 4, 5, 6, 7) and res.dropped == (0, 3, 8)
    np.testing.assert_array_equal(res.total, enc.sum(x[list(res.survivors)]))
    assert res.bytes_sent_by_stage[3][1:] == (0, 0, 0)
    text = "\n".join(res.log)
    assert "client 3 dropped before sharing its keys" in text
    assert "client 0 dropped: the server asks survivors for shares of client 0's mask key; rebuilt from 4 of" in text
    assert "client 5 sent its masked input but did not answer the unmasking" in text


def test_fewer_than_t_shares_is_a_clear_error():
    enc, _, x = _inputs(5, 10)
    with pytest.raises(ValueError, match=r"only 2 shares of client 3's key reached the server; threshold t = 3: "
                                         r"the sum cannot be recovered"):
        secure_sum(x, encoding=enc, threshold=3, drop_before_masking=[3, 4], drop_before_unmasking=[2], rng=b"f")
    with pytest.raises(ValueError, match=r"only 2 shares of client 0's self-mask seed reached the server; "
                                         r"threshold t = 3"):
        secure_sum(x, encoding=enc, threshold=3, drop_before_unmasking=[0, 1, 2], rng=b"f")


# -- the masks ---------------------------------------------------------------------------------------

def test_pairwise_masks_cancel_exactly():
    enc, _, x = _inputs(6, 40)
    server, _ = _round(x, threshold=4)
    total = server.finish()
    R = np.uint64(enc.modulus)
    masked_sum = sum(server.masked[u] for u in range(6)) % R
    self_masks = sum(prg_words(server.self_mask_seeds[u], 40) for u in range(6)) % R
    np.testing.assert_array_equal((masked_sum + R - self_masks) % R, enc.sum(x))
    np.testing.assert_array_equal(total, enc.sum(x))
    assert (masked_sum != enc.sum(x)).all()   # without removing the self-masks the sum is noise


@pytest.mark.parametrize("pattern", ["zeros", "ramp"])
def test_masked_vector_looks_uniform_and_uncorrelated(pattern):
    enc = Encoding(clip=1.0, n_clients=3)
    p = 20_000
    real = np.zeros(p) if pattern == "zeros" else np.linspace(-1, 1, p)
    x = enc.encode(np.stack([real, real, real]))
    res = secure_sum(x, encoding=enc, threshold=2, rng=b"uniform")
    y = res.masked[1].astype(np.float64) / enc.modulus
    assert stats.kstest(y, "uniform").pvalue > 0.01
    if pattern == "ramp":
        assert abs(stats.pearsonr(real, y).statistic) < 0.03
        assert abs(stats.pearsonr(x[1].astype(np.float64), y).statistic) < 0.03


def test_prg_uses_the_whole_seed():
    seed = bytes(range(16))
    for i in range(4, 16):   # change one byte beyond the first 32 bits
        other = bytearray(seed)
        other[i] ^= 1
        a, b = prg_words(seed, 1000), prg_words(bytes(other), 1000)
        assert (a != b).mean() > 0.99
    np.testing.assert_array_equal(prg_words(seed, 10), prg_words(seed, 10))
    with pytest.raises(ValueError, match="exactly 16 bytes"):
        prg_words(b"1234", 10)


# -- what the server may learn -------------------------------------------------------------------------

@pytest.mark.parametrize("before_masking, before_unmasking", [((), ()), ((2,), ()), ((), (1,)), ((0, 5), (3,))])
def test_server_never_holds_both_secrets_of_a_client(before_masking, before_unmasking):
    enc, _, x = _inputs(7, 8)
    server, _ = _round(x, threshold=4, before_masking=before_masking, before_unmasking=before_unmasking)
    server.finish()
    t = server.threshold
    for u, got in server.shares_received.items():
        assert not (len(got["b"]) >= t and len(got["s"]) >= t), u
        if u in before_masking:
            assert len(got["b"]) == 0 and len(got["s"]) >= t
        else:
            assert len(got["s"]) == 0 and len(got["b"]) >= t


def test_a_client_refuses_to_reveal_both_secrets():
    enc, _, x = _inputs(4, 5)
    server, clients = _to_stage_2(x, threshold=2, seed=b"refuse")
    with pytest.raises(ValueError, match=r"client 1 refuses: the server asks for both the share of client 2's "
                                         r"self-mask seed b and the share of its mask key s"):
        clients[1].unmask([0, 1, 2, 3], [2])
    with pytest.raises(ValueError, match="client 1 refuses: the server lists it as dropped"):
        clients[1].unmask([0, 2, 3], [1])
    first = clients[1].unmask([0, 1, 2, 3], [])
    assert clients[1].unmask([0, 1, 2, 3], []) == first   # a re-sent request gets the same answer
    with pytest.raises(ValueError, match="the survivor set cannot change once stage 3 started"):
        clients[1].unmask([0, 1, 3], [2])
    requests = server.start_unmasking()
    with pytest.raises(ValueError, match=r"client 2 cannot drop out now: unmasking began"):
        server.mark_dropped(2)
    with pytest.raises(ValueError, match=r"client 3's masked input arrived after unmasking began"):
        server.receive_masked(3, bytes(20))
    for u, (alive, gone) in requests.items():
        server.receive_unmask(u, clients[u].unmask(alive, gone))
    np.testing.assert_array_equal(server.finish(), enc.sum(x))


def test_a_client_may_withdraw_before_unmasking():
    enc, _, x = _inputs(5, 6)
    server, clients = _to_stage_2(x, threshold=3, seed=b"withdraw")
    server.mark_dropped(4)
    for u, (alive, gone) in server.start_unmasking().items():
        server.receive_unmask(u, clients[u].unmask(alive, gone))
    np.testing.assert_array_equal(server.finish(), enc.sum(x[:4]))
    assert server.dropped == (4,)


def test_seeded_rounds_replay_and_default_rounds_do_not():
    enc, _, x = _inputs(4, 10)
    a = secure_sum(x, encoding=enc, threshold=2, rng=b"same")
    b = secure_sum(x, encoding=enc, threshold=2, rng=b"same")
    c = secure_sum(x, encoding=enc, threshold=2, rng=random.Random(3))
    d, e = (secure_sum(x, encoding=enc, threshold=2) for _ in range(2))
    for u in range(4):
        np.testing.assert_array_equal(a.masked[u], b.masked[u])
        assert (a.masked[u] != c.masked[u]).any() and (d.masked[u] != e.masked[u]).any()
    np.testing.assert_array_equal(d.total, a.total)


# -- cost ----------------------------------------------------------------------------------------------

def test_bytes_are_the_serialized_sizes():
    enc, _, x = _inputs(5, 31)
    res = secure_sum(x, encoding=enc, threshold=3, drop_before_masking=[4], rng=b"bytes")
    sealed = 12 + (4 + 4 + 4 + 16 + 32) + 16   # nonce, ids, index, share of b, share of s, GCM tag
    # 4 survivors' self-mask seeds (25 bytes each) and the dropped client's key (41 bytes)
    assert res.bytes_sent_by_stage[0] == (64, 4 * sealed, 4 * 31, 4 * 25 + 41)
    assert res.bytes_sent_by_stage[4] == (64, 4 * sealed, 0, 0)
    assert res.bytes_sent[0] == sum(res.bytes_sent_by_stage[0])
    assert res.prg_words_client[0] == 31 * 5 and res.prg_words_server == 31 * (4 + 4)
    assert res.revealed[4] == (0, 4) and res.revealed[0] == (4, 0)


def test_harary_gives_the_same_sum_with_fewer_bytes():
    enc, _, x = _inputs(20, 100)
    full = secure_sum(x, encoding=enc, threshold=4, rng=b"n20")
    sparse = secure_sum(x, encoding=enc, threshold=4, graph="harary", rng=b"n20")
    np.testing.assert_array_equal(sparse.total, full.total)
    np.testing.assert_array_equal(sparse.total, enc.sum(x))
    assert all(len(v) == default_degree(20) == 10 for v in sparse.neighbours.values())
    for u in range(20):
        assert sparse.bytes_sent[u] < full.bytes_sent[u]
        assert sparse.prg_words_client[u] < full.prg_words_client[u]


def test_harary_graph_is_regular_symmetric_and_random():
    nb = neighbour_graph(range(12), graph="harary", degree=4, order=byte_source(b"g").permutation(12))
    assert all(len(v) == 4 for v in nb.values())
    assert all(u in nb[v] for u in nb for v in nb[u]) and all(u not in nb[u] for u in nb)
    assert nb != neighbour_graph(range(12), graph="harary", degree=4)
    assert neighbour_graph(range(5), graph="harary", degree=4) == neighbour_graph(range(5), graph="complete")
    assert [default_degree(n) for n in (2, 3, 5, 10, 50)] == [1, 2, 4, 8, 12]


def test_shamir_halves_rebuild_a_32_byte_key_from_any_t_shares():
    secret = bytes(range(32))
    shares = split_secret(secret, threshold=3, n_shares=6)
    assert combine_shares([shares[5], shares[0], shares[3]], threshold=3) == secret
    assert combine_shares(shares[:2], threshold=2) != secret   # t − 1 shares interpolate to something else
    with pytest.raises(ValueError, match="only 2 shares were given; threshold t = 3"):
        combine_shares(shares[:2], threshold=3)


# -- bad input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(threshold=1), r"secure.threshold = 1 is not allowed: must be at least 2"),
    (dict(threshold=7), r"secure.threshold = 7 is not allowed: must be at most 6"),
    (dict(threshold=-1), r"secure.threshold = -1 is not allowed: must be an integer ≥ 2"),
    (dict(threshold=2, graph="star"), r"secure.graph = 'star' is not allowed: choose one of complete, harary"),
    (dict(threshold=2, graph="harary", degree=3), r"secure.degree = 3 is not allowed: a Harary graph over 6 "
                                                  r"clients needs an even degree in \[2, 5\] or 5"),
    (dict(threshold=2, graph="harary", degree=8), r"secure.degree = 8 is not allowed"),
    (dict(threshold=4, graph="harary", degree=2), r"secure.threshold = 4 is not allowed: must be at most 3.*"
                                                  r"at most degree \+ 1"),
    (dict(threshold=2, degree=4), r"secure.degree = 4 is not allowed with secure.graph = 'complete'"),
    (dict(threshold=2, drop_before_masking=[6]), r"drop_before_masking holds 6, which is not allowed"),
    (dict(threshold=2, drop_before_masking=[1], drop_before_unmasking=[1]), r"client 1 is in both"),
])
def test_bad_settings_are_refused_with_the_field_named(kwargs, message):
    enc, _, x = _inputs(6, 4)
    with pytest.raises(ValueError, match=message):
        secure_sum(x, encoding=enc, **kwargs)


def test_bad_inputs_are_refused():
    enc, real, x = _inputs(3, 4)
    with pytest.raises(ValueError, match=r"n_clients = 1 is not allowed: secure aggregation needs at least 2"):
        secure_sum(x[:1], encoding=enc, threshold=2)
    big = real.copy()
    big[1, 2] = 1.5
    with pytest.raises(ValueError, match=r"an update value 1.5 is not allowed: outside the clipping range \[-1, 1\]"):
        secure_sum(big, encoding=enc, threshold=2)
    wide = x.copy()
    wide[0, 0] = enc.scale * 3   # a ring element that decodes to 3
    with pytest.raises(ValueError, match=r"an update value 3 is not allowed: outside the clipping range"):
        secure_sum(wide, encoding=enc, threshold=2)
    with pytest.raises(ValueError, match=r"inputs must be ring elements in \[0, 2\^32\)"):
        secure_sum(x + np.uint64(2 ** 32), encoding=enc, threshold=2)
    with pytest.raises(ValueError, match=r"encoding.n_clients = 2 is not allowed for 3 clients"):
        secure_sum(x, encoding=Encoding(clip=1.0, n_clients=2), threshold=2)
    with pytest.raises(ValueError, match=r"inputs of shape \(4,\) are not allowed"):
        secure_sum(x[0], encoding=enc, threshold=2)
    with pytest.raises(ValueError, match=r"rng = 'seed' is not allowed"):
        secure_sum(x, encoding=enc, threshold=2, rng="seed")
