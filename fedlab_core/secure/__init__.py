"""Secure aggregation: the server learns the sum of the hospitals' updates, and nothing else.

- ``quantize``: fixed-point encoding of real updates into the ring Z_(2^32).
- ``masking``: pairwise-masking secure aggregation (Bonawitz et al. 2017), with
  dropout recovery by Shamir secret sharing and the sparse graph of SecAgg+;
  built from ``channel`` (X25519 key agreement, AES-GCM), ``prg`` (AES-CTR
  masks from full 128-bit seeds), ``shamir`` (t-of-n shares), ``graph``
  (complete or Harary neighbours) and ``randomness`` (OS or seeded bytes).
- ``paillier``: additively homomorphic encryption (Paillier 1999), with packing.
- ``rounds``: one round's secure sum as the simulation runs it.
- ``inspect``: what the server sees, and what each protocol costs.
"""
