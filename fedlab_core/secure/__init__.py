"""Secure aggregation: the server learns the sum of the hospitals' updates, and nothing else.

- ``quantize``: fixed-point encoding of real updates into the ring Z_(2^32).
- ``masking``: pairwise-masking secure aggregation (Bonawitz et al. 2017), with
  dropout recovery by Shamir secret sharing and the sparse graph of SecAgg+.
- ``paillier``: additively homomorphic encryption (Paillier 1999), with packing.
"""
