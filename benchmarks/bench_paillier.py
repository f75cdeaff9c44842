"""What does Paillier secure aggregation cost, and how much does packing save?

Workload: 10 hospitals, 3 of which drop out (the sum runs over the 7 others),
each sending a P-value update drawn uniformly from [-1, 1]. P = 31 is the
update of a logistic regression on 30 features plus a bias, and P = 1000 a
small MLP. The fixed-point encoding is
``Encoding(clip=1, n_clients=10, bits=32)``: scale 2^27. Keys are 2048
bits, the minimum for real use. Key generation is timed once, on its own.

For each P and each mode (one ciphertext per value, or packed with
``n_slots`` values per ciphertext) the table gives the ciphertexts and bytes
one hospital sends and the seconds it spends quantising and encrypting
(mean over the 7). It also gives the aggregator's seconds to multiply the
ciphertexts, the key authority's seconds to decrypt and unpack the sum, and
the largest error of the decoded sum against the plain sum next to the
fixed-point bound 7 / (2·scale).

The unpacked run at P = 1000 is timed only when its estimate from the
P = 31 unpacked run (per-value costs times 1000) is under
``--unpacked-limit`` seconds (60 by default). Otherwise its row holds that
estimate, marked ``estimated``.

    python benchmarks/bench_paillier.py                         # ~15 s
    python benchmarks/bench_paillier.py --unpacked-limit 600    # also time unpacked P = 1000 (~70 s)

``run()`` returns the table as a pandas DataFrame.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd

from fedlab_core.secure.paillier import KeyAuthority, paillier_sum
from fedlab_core.secure.quantize import Encoding

N_CLIENTS, DROPPED, CLIP = 10, (2, 5, 8), 1.0


def _row(P: int, packed: bool, res, err: float, bound: float) -> dict:
    return {"P": P, "mode": "packed" if packed else "unpacked", "values/ct": res.n_slots,
            "ct/client": res.n_ciphertexts_per_client, "bytes/client": res.bytes_per_client,
            "encrypt s/client": res.seconds_encrypt_per_client, "aggregate s": res.seconds_aggregate,
            "decrypt s": res.seconds_decrypt, "max error": err, "error bound": bound,
            "estimated": False}


def run(*, key_bits: int = 2048, sizes: tuple[int, ...] = (31, 1000), unpacked_limit_s: float = 60.0,
        seed: int = 0) -> pd.DataFrame:
    """The benchmark table: one row per (P, mode). See the module docstring."""
    enc = Encoding(clip=CLIP, n_clients=N_CLIENTS, bits=32)
    survivors = N_CLIENTS - len(DROPPED)
    bound = survivors / (2 * enc.scale)
    authority = KeyAuthority(key_bits=key_bits, min_clients=2)
    rng = np.random.default_rng(seed)
    rows, per_value = [], None
    for P in sizes:
        X = rng.uniform(-CLIP, CLIP, size=(N_CLIENTS, P))
        plain = np.delete(X, DROPPED, axis=0).sum(0)
        for packed in (False, True):
            if not packed and per_value is not None and P != per_value[0]:
                estimate = [c * P for c in per_value[1:]]
                if estimate[0] * survivors + sum(estimate[1:]) >= unpacked_limit_s:
                    rows.append({"P": P, "mode": "unpacked", "values/ct": 1, "ct/client": P,
                                 "bytes/client": P * rows[0]["bytes/client"] // per_value[0],
                                 "encrypt s/client": estimate[0], "aggregate s": estimate[1],
                                 "decrypt s": estimate[2], "max error": np.nan, "error bound": bound,
                                 "estimated": True})
                    continue
            res = paillier_sum(X, encoding=enc, packed=packed, dropped=DROPPED, authority=authority)
            rows.append(_row(P, packed, res, float(np.abs(res.total - plain).max()), bound))
            if not packed and per_value is None:
                per_value = (P, res.seconds_encrypt_per_client / P, res.seconds_aggregate / P,
                             res.seconds_decrypt / P)
    table = pd.DataFrame(rows)
    table.attrs.update(key_bits=key_bits, seconds_keygen=authority.seconds_keygen,
                       n_clients=N_CLIENTS, dropped=DROPPED, scale=enc.scale)
    return table


def speedups(table: pd.DataFrame) -> pd.DataFrame:
    """Unpacked ÷ packed, per P: bytes, encryption, aggregation, decryption."""
    out = []
    for P, group in table.groupby("P"):
        u, p = (group[group["mode"] == m].iloc[0] for m in ("unpacked", "packed"))
        out.append({"P": P, "bytes": u["bytes/client"] / p["bytes/client"],
                    "encrypt": u["encrypt s/client"] / p["encrypt s/client"],
                    "aggregate": u["aggregate s"] / p["aggregate s"],
                    "decrypt": u["decrypt s"] / p["decrypt s"], "estimated": bool(u["estimated"])})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--unpacked-limit", type=float, default=60.0,
                        help="time unpacked P = 1000 only if estimated under this many seconds")
    args = parser.parse_args()
    try:
        import gmpy2  # noqa: F401
        backend = "gmpy2"
    except ImportError:
        backend = "pure Python (install gmpy2: ~10x faster)"
    start = time.perf_counter()
    table = run(key_bits=args.key_bits, unpacked_limit_s=args.unpacked_limit)
    print(f"phe Paillier, {args.key_bits}-bit key ({backend}); {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}")
    print(f"{N_CLIENTS} hospitals, {len(DROPPED)} dropped; key generation "
          f"{table.attrs['seconds_keygen'] * 1e3:.0f} ms; scale 2^{table.attrs['scale'].bit_length() - 1}\n")
    with pd.option_context("display.width", 160, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
        print("\nspeed-up of packing (unpacked / packed):")
        print(speedups(table).to_string(index=False))
    print(f"\n(total {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
