"""Paillier secure aggregation: sums equal plain sums, packing never carries, the key holder's limits.

Keys here are 512 or 1024 bits so the file runs in seconds; real use needs
2048 bits or more (the benchmark uses 2048).
"""

import numpy as np
import pytest

phe = pytest.importorskip("phe")

from fedlab_core.secure.paillier import (  # noqa: E402
    EncryptedAggregate, EncryptedUpdate, KeyAuthority, PackingLayout, PaillierResult, aggregate,
    ciphertext_bytes, encrypt_update, paillier_sum)
from fedlab_core.secure.quantize import Encoding  # noqa: E402


@pytest.fixture(scope="module")
def authority():
    return KeyAuthority(key_bits=512, min_clients=2)


@pytest.fixture(scope="module")
def authority_1024():
    return KeyAuthority(key_bits=1024, min_clients=2)


def updates(n=6, P=31, clip=1.0, seed=0):
    return np.random.default_rng(seed).uniform(-clip, clip, size=(n, P))


# --- the sum ------------------------------------------------------------------


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("bits", [16, 32])
def test_sum_equals_plain_sum(authority, packed, bits):
    enc = Encoding(clip=1.0, n_clients=6, bits=bits)
    X = updates()
    assert (X < 0).any()
    res = paillier_sum(X, encoding=enc, packed=packed, authority=authority)
    assert isinstance(res, PaillierResult) and res.total.shape == (31,)
    assert np.abs(res.total - X.sum(0)).max() <= enc.error_bound
    # the same integers as the plain ring sum: encryption adds no error of its own
    np.testing.assert_array_equal(res.total, enc.decode(enc.sum(enc.encode(X))))


@pytest.mark.parametrize("packed", [False, True])
def test_sum_with_dropouts_is_over_survivors(authority, packed):
    enc = Encoding(clip=2.0, n_clients=10)
    X = updates(n=10, P=31, clip=2.0, seed=1)
    res = paillier_sum(X, encoding=enc, packed=packed, dropped=[0, 4, 9], authority=authority)
    survivors = np.delete(X, [0, 4, 9], axis=0)
    assert res.n_contributors == 7
    assert np.abs(res.total - survivors.sum(0)).max() <= 7 / (2 * enc.scale) <= enc.error_bound


def test_all_negative_unpacked_sum_by_hand(authority):
    enc = Encoding(clip=1.0, n_clients=3)
    X = np.array([[-0.5, -1.0], [-0.25, -1.0], [-0.125, -1.0]])  # dyadic: exact in fixed point
    for packed in (False, True):
        res = paillier_sum(X, encoding=enc, packed=packed, authority=authority)
        assert res.total.tolist() == [-0.875, -3.0]


def test_clip_instead_of_refusing_with_check_false(authority):
    enc = Encoding(clip=1.0, n_clients=2)
    X = np.array([[3.0, -0.5], [0.25, -7.0]])
    res = paillier_sum(X, encoding=enc, authority=authority, check=False)
    assert res.total.tolist() == [1.25, -1.5]


def test_larger_key_and_many_ciphertexts(authority_1024):
    enc = Encoding(clip=1.0, n_clients=4)
    X = updates(n=4, P=200, seed=2)
    res = paillier_sum(X, encoding=enc, packed=True, authority=authority_1024)
    layout = PackingLayout.plan(enc, key_bits=1024)
    assert res.n_ciphertexts_per_client == -(-200 // layout.n_slots) > 1
    assert np.abs(res.total - X.sum(0)).max() <= enc.error_bound


# --- homomorphism and packing --------------------------------------------------


def test_homomorphic_property_on_raw_integers(authority):
    pk = authority.public_key
    n = pk.n
    a, b = 123456789, n - 987654321                # b stands for -987654321 mod n
    ea, eb = phe.EncryptedNumber(pk, pk.raw_encrypt(a)), phe.EncryptedNumber(pk, pk.raw_encrypt(b))
    assert ea.ciphertext(False) != phe.EncryptedNumber(pk, pk.raw_encrypt(a)).ciphertext(False)  # fresh r
    agg = aggregate([_raw_update(ea, pk), _raw_update(eb, pk)])
    assert authority.decrypt_sum(agg).tolist() == [123456789 - 987654321]
    # E(a)·E(b) mod n² decrypts to a + b mod n, E(a)^k to k·a mod n
    key = authority._KeyAuthority__private_key
    assert key.raw_decrypt(ea.ciphertext(False) * eb.ciphertext(False) % pk.nsquare) == (a + b) % n
    assert key.raw_decrypt(pow(ea.ciphertext(False), 5, pk.nsquare)) == 5 * a


def _raw_update(ciphertext, pk):
    enc = Encoding(clip=1.0, n_clients=2)
    return EncryptedUpdate(ciphertexts=(ciphertext,), n_values=1, encoding=enc, layout=None,
                           public_key=pk, n_bytes=0)


def test_layout_formula():
    enc = Encoding(clip=1.0, n_clients=10, bits=32)   # scale 2^27: q in [-2^27, 2^27]
    layout = PackingLayout.plan(enc, key_bits=2048)
    assert layout.offset == 2 ** 27
    assert layout.value_bits == 29                     # 2·q_max = 2^28 needs 29 bits
    assert layout.slot_bits == 29 + 4 + 1              # ceil(log2 10) = 4, one spare bit
    assert layout.n_slots == (2048 - 2) // 34 == 60
    assert PackingLayout.plan(Encoding(clip=1.0, n_clients=1), key_bits=512).slot_bits == \
        (2 * 2 ** 30).bit_length() + 0 + 1


def test_packing_round_trip_without_encryption():
    enc = Encoding(clip=1.0, n_clients=5)
    layout = PackingLayout.plan(enc, key_bits=512)
    rng = np.random.default_rng(3)
    Q = rng.integers(-layout.offset, layout.offset + 1, size=(5, layout.n_slots))
    assert layout.unpack(layout.pack(Q[0]), count=1) == Q[0].tolist()
    assert layout.unpack(sum(layout.pack(q) for q in Q), count=5) == Q.sum(0).tolist()


@pytest.mark.parametrize("pattern", ["all_plus", "all_minus", "alternating"])
def test_no_carry_across_slots_at_the_worst_case(authority, pattern):
    n = 7
    enc = Encoding(clip=0.5, n_clients=n)
    layout = PackingLayout.plan(enc, key_bits=512)
    P = 2 * layout.n_slots + 1                     # several full ciphertexts and a partial one
    sign = {"all_plus": np.ones(P), "all_minus": -np.ones(P),
            "alternating": np.where(np.arange(P) % 2 == 0, 1.0, -1.0)}[pattern]
    X = np.tile(0.5 * sign, (n, 1))                # every client at ±clip: the largest slot sums
    res = paillier_sum(X, encoding=enc, packed=True, authority=authority)
    np.testing.assert_array_equal(res.total, n * 0.5 * sign)
    # the slot sums reach the top of their headroom but never its spare bit
    assert n * 2 * layout.offset < 2 ** (layout.slot_bits - 1)


# --- who can decrypt --------------------------------------------------------------


def test_key_authority_refuses_a_single_update(authority):
    enc = Encoding(clip=1.0, n_clients=3)
    u = encrypt_update(np.array([0.5, -0.5]), public_key=authority.public_key, encoding=enc,
                       packed=True, client="A")
    with pytest.raises(ValueError, match=r"n_contributors = 1 .*min_clients = 2"):
        authority.decrypt_sum(u)
    with pytest.raises(ValueError, match=r"n_contributors = 1 .*min_clients = 2"):
        authority.decrypt_sum(aggregate([u]))


def test_aggregate_refuses_one_update_counted_twice(authority):
    enc = Encoding(clip=1.0, n_clients=3)
    u = encrypt_update(np.array([0.5]), public_key=authority.public_key, encoding=enc, packed=False)
    with pytest.raises(ValueError, match="same ciphertext twice"):
        aggregate([u, u])
    a = encrypt_update(np.array([0.5]), public_key=authority.public_key, encoding=enc, packed=False,
                       client="A")
    b = encrypt_update(np.array([0.1]), public_key=authority.public_key, encoding=enc, packed=False,
                       client="A")
    with pytest.raises(ValueError, match="client 'A' more than once"):
        aggregate([a, b])


def test_a_lone_key_holder_could_decrypt_one_update():
    """min_clients = 1 shows why the key must not sit with the aggregator."""
    curious = KeyAuthority(key_bits=512, min_clients=1)
    enc = Encoding(clip=1.0, n_clients=3)
    u = encrypt_update(np.array([0.75, -0.25]), public_key=curious.public_key, encoding=enc,
                       packed=False)
    assert (curious.decrypt_sum(u) / enc.scale).tolist() == [0.75, -0.25]


def test_another_key_is_refused(authority):
    other = KeyAuthority(key_bits=512)
    enc = Encoding(clip=1.0, n_clients=3)
    us = [encrypt_update(np.array([0.5]), public_key=other.public_key, encoding=enc, packed=True)
          for _ in range(2)]
    with pytest.raises(ValueError, match="another key"):
        authority.decrypt_sum(aggregate(us))
    mixed = [us[0], encrypt_update(np.array([0.5]), public_key=authority.public_key, encoding=enc,
                                   packed=True)]
    with pytest.raises(ValueError, match="disagree on public_key"):
        aggregate(mixed)


def test_aggregate_holds_no_private_information(authority):
    enc = Encoding(clip=1.0, n_clients=3)
    us = [encrypt_update(np.array([0.5]), public_key=authority.public_key, encoding=enc, packed=True,
                         client=c) for c in range(3)]
    agg = aggregate(us)
    assert isinstance(agg, EncryptedAggregate) and agg.n_contributors == 3 and agg.contributors == (0, 1, 2)
    assert not hasattr(authority.public_key, "p") and not hasattr(agg.public_key, "p")


# --- sizes ---------------------------------------------------------------------


@pytest.mark.parametrize("key_bits, width", [(512, 128), (1024, 256)])
def test_ciphertext_sizes(authority, authority_1024, key_bits, width):
    auth = authority if key_bits == 512 else authority_1024
    enc = Encoding(clip=1.0, n_clients=10)
    X = updates(n=3, P=31)
    unpacked = paillier_sum(X, encoding=enc, packed=False, authority=auth)
    packed = paillier_sum(X, encoding=enc, packed=True, authority=auth)
    assert unpacked.n_ciphertexts_per_client == 31
    assert unpacked.bytes_per_client == 31 * width         # 2·key_bits/8 per ciphertext
    n_slots = (key_bits - 2) // 34
    assert packed.n_ciphertexts_per_client == -(-31 // n_slots)
    assert packed.bytes_per_client == packed.n_ciphertexts_per_client * width
    assert all(0 < c < auth.public_key.nsquare for c in unpacked.ciphertexts)
    assert len(ciphertext_bytes(unpacked.ciphertexts[0], public_key=auth.public_key)) == width


def test_2048_bit_ciphertext_is_512_bytes():
    pk = phe.PaillierPublicKey(n=(1 << 2047) + 1)  # the width depends only on the size of n
    assert len(ciphertext_bytes(pk.nsquare - 1, public_key=pk)) == 512


# --- bad input -----------------------------------------------------------------


@pytest.mark.parametrize("key_bits", [256, 768 + 1, 1000, 2048.0, True])
def test_bad_key_bits(key_bits):
    with pytest.raises(ValueError,
                       match=rf"key_bits = {key_bits!r} is not allowed: must be a multiple of 256"):
        KeyAuthority(key_bits=key_bits)


def test_bad_min_clients():
    with pytest.raises(ValueError, match=r"min_clients = 0 is not allowed"):
        KeyAuthority(key_bits=512, min_clients=0)


def test_values_outside_the_clipping_range_are_refused(authority):
    enc = Encoding(clip=1.0, n_clients=3)
    with pytest.raises(ValueError, match=r"value 1\.5 is not allowed: outside the clipping range \[-1, 1\]"):
        encrypt_update(np.array([0.2, -1.5]), public_key=authority.public_key, encoding=enc, packed=True)
    with pytest.raises(ValueError, match="NaN"):
        paillier_sum(np.array([[0.1], [np.nan]]), encoding=enc, authority=authority)


def test_layout_that_cannot_hold_one_slot():
    enc = Encoding(clip=1.0, n_clients=10)
    with pytest.raises(ValueError, match=r"key_bits = 32 is too small for packing: .* 30 bits cannot "
                                         r"hold even one slot of 34 bits"):
        PackingLayout.plan(enc, key_bits=32)
    with pytest.raises(ValueError, match="n_slots = 0 is not allowed"):
        PackingLayout(value_bits=29, slot_bits=34, n_slots=0, offset=2 ** 27, n_clients=10)
    with pytest.raises(ValueError, match="slot_bits = 30 is not allowed"):
        PackingLayout(value_bits=29, slot_bits=30, n_slots=5, offset=2 ** 27, n_clients=10)


def test_small_public_key_is_refused():
    pk, _ = phe.generate_paillier_keypair(n_length=256)
    with pytest.raises(ValueError, match=r"public_key size \(bits of n\) = 256 is not allowed"):
        encrypt_update(np.zeros(3), public_key=pk, encoding=Encoding(clip=1.0, n_clients=2), packed=False)


def test_bad_sum_arguments(authority):
    enc = Encoding(clip=1.0, n_clients=3)
    X = updates(n=3, P=4)
    with pytest.raises(ValueError, match=r"X holds 4 clients, more than encoding.n_clients = 3"):
        paillier_sum(updates(n=4, P=4), encoding=enc, authority=authority)
    with pytest.raises(ValueError, match=r"X of shape \(4,\) is not allowed"):
        paillier_sum(X[0], encoding=enc, authority=authority)
    with pytest.raises(ValueError, match=r"dropped = \[3\] is not allowed"):
        paillier_sum(X, encoding=enc, dropped=[3], authority=authority)
    with pytest.raises(ValueError, match=r"dropped = \[0, 1, 2\] is not allowed: it leaves no client"):
        paillier_sum(X, encoding=enc, dropped=[0, 1, 2], authority=authority)
    with pytest.raises(ValueError, match=r"n_contributors = 1 is not allowed"):
        paillier_sum(X, encoding=enc, dropped=[0, 1], authority=authority)
    with pytest.raises(ValueError, match=r"key_bits = 1024 is not allowed: the authority's key has 512"):
        paillier_sum(X, encoding=enc, key_bits=1024, authority=authority)
    with pytest.raises(ValueError, match=r"x_real of shape \(3, 4\) is not allowed"):
        encrypt_update(X, public_key=authority.public_key, encoding=enc, packed=True)
    with pytest.raises(ValueError, match="updates is empty"):
        aggregate([])


def test_aggregate_refuses_more_clients_than_the_encoding_allows(authority):
    enc = Encoding(clip=1.0, n_clients=2)
    us = [encrypt_update(np.array([1.0]), public_key=authority.public_key, encoding=enc, packed=True,
                         client=c) for c in range(3)]
    with pytest.raises(ValueError, match=r"3 updates is not allowed: encoding.n_clients = 2"):
        aggregate(us)
