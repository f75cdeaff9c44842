"""What secure aggregation costs: time per round and bytes per hospital, per protocol.

    .venv/bin/python benchmarks/secure_costs.py            # ~10 s

The acceptance case of the secure-aggregation lab: 10 hospitals, a
logistic-regression update (30 features + bias = 31 values), 3 hospitals
dropping out after sharing their keys, 2048-bit Paillier keys. Then the
complete graph against SecAgg+'s sparse graph at 50 hospitals and 1000 values.
All parties run in this one process, one after another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedlab_core.secure.inspect import protocol_costs


def main() -> None:
    pd.set_option("display.width", 140)
    rng = np.random.default_rng(0)
    updates = rng.normal(0, 0.05, size=(10, 31))
    print("10 hospitals, 31 values each, 3 dropped before masking, Paillier keys of 2048 bits")
    print(protocol_costs(updates, dropped=[2, 5, 7]).round(9).to_string(index=False))
    updates = rng.normal(0, 0.05, size=(50, 1000))
    print("\n50 hospitals, 1000 values each, 5 dropped: the complete graph against SecAgg+")
    print(protocol_costs(updates, dropped=[3, 11, 19, 27, 35],
                         protocols=("plain", "masking", "masking, SecAgg+ graph")).round(9)
          .to_string(index=False))


if __name__ == "__main__":
    main()
