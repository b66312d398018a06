#!/usr/bin/python3
"""Train scikit-learn's LogisticRegression and HistGradientBoostingClassifier on
the exact time-based split the Go trainer uses, and print each model's holdout
ROC AUC and training time as JSON lines.

The split comes from BenchmarkTrain (services/trainer/bench/bench_test.go),
which writes it as CSV (Debian has no python3-pyarrow, so no Parquet here):
columns split (train|holdout), snapshot_date, the model inputs in order, label.

    CMMSFLOW_TEST_DATABASE_URL=... go test -run '^$' -bench Train -benchtime 5x ./services/trainer/bench/
    /usr/bin/python3 services/trainer/bench/compare_sklearn.py services/trainer/bench/out/split.csv [fits]

fits (default 5) is the number of fits per model; the best time is reported.
`make bench` passes its -count, the number of fits the Go side had.

Needs Debian's python3-sklearn and python3-pandas (/usr/bin/python3: a pyenv
python3 earlier on PATH may lack them).
"""

import json
import sys
import time

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (average_precision_score, brier_score_loss,
                             roc_auc_score)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REPEATS = 5  # fits per model by default; the best time is reported, as on the Go side


def main(path, repeats=REPEATS):
    df = pd.read_csv(path)
    inputs = [c for c in df.columns if c not in ("split", "snapshot_date", "label")]
    train, hold = df[df.split == "train"], df[df.split == "holdout"]
    X, y = train[inputs].to_numpy(float), train.label.to_numpy(int)
    Xh, yh = hold[inputs].to_numpy(float), hold.label.to_numpy(int)
    models = {
        # The same objective as Go's logistic learner: standardised inputs, L2
        # with C = 1 (penalty ½‖w‖² on the summed log-loss).
        "sklearn-logistic": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)),
        # Defaults (100 iterations, 31 leaves, lr 0.1; early stopping on a
        # random 10% once there are more than 10,000 rows).
        "sklearn-hgb": lambda: HistGradientBoostingClassifier(random_state=0),
    }
    for name, make in models.items():
        best, model = None, None
        for _ in range(repeats):
            m = make()
            t0 = time.perf_counter()
            m.fit(X, y)
            dt = time.perf_counter() - t0
            if best is None or dt < best:
                best, model = dt, m
        p = model.predict_proba(Xh)[:, 1]
        print(json.dumps({
            "learner": name,
            "roc_auc": roc_auc_score(yh, p),
            "pr_auc": average_precision_score(yh, p),
            "brier": brier_score_loss(yh, p),
            "train_seconds_best": best,
            "rows_train": len(train),
            "rows_holdout": len(hold),
        }))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "services/trainer/bench/out/split.csv",
         int(sys.argv[2]) if len(sys.argv) > 2 else REPEATS)
