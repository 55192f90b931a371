"""Reference probes for test_eval_probe: the published pipeline
make_pipeline(StandardScaler(), LogisticRegression(max_iter=20000)) on the embeddings files the
C++ test wrote, scored on the bootstrap indices it wrote (numpy/scipy/sklearn throughout)."""
import json
import sys
import warnings

import h5py
import numpy as np
from scipy.stats import mannwhitneyu, wilcoxon
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

warnings.simplefilter("ignore")
spec = json.load(open(sys.argv[1]))
indices = {int(n): np.array(v) for n, v in json.load(open(spec["indices"])).items()}
OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
       "==": np.equal, "!=": np.not_equal}


def load(path):
    with h5py.File(path, "r") as f:
        labels, categories = {}, {}
        for name, ds in f["labels"].items():
            values = ds[:].astype(np.float64)
            if ds.dtype.kind in "iu":
                values[values == -1] = np.nan
            labels[name] = values
            if "categories" in ds.attrs:
                categories[name] = [c.decode() if isinstance(c, bytes) else str(c) for c in ds.attrs["categories"]]
        return {"x": f["embeddings"][:].astype(np.float64),
                "split": f["split"][:].astype(str), "labels": labels, "categories": categories}


def select(table, task, side):
    keep = np.ones(len(table["split"]), dtype=bool)
    if side["split"] != "all":
        keep &= table["split"] == side["split"]
    for column, op, value in task["filters"] + side["filters"]:
        if isinstance(value, str):  # a category name: its index in the column's categories
            value = table["categories"][column].index(value)
        column_values = table["labels"][column]
        keep &= ~np.isnan(column_values) & OPS[op](np.nan_to_num(column_values, nan=-1e300), value)
    y = table["labels"][task["column"]]
    keep &= ~np.isnan(y)
    y = y[keep]
    if task["threshold"]:
        op, value = task["threshold"]
        y = OPS[op](y, value)
    return table["x"][keep], y.astype(np.int64)


tables = {}
records, comparisons = [], []
for task in spec["tasks"]:
    per_class = {}
    for model, files in spec["models"].items():
        sides = []
        for side in (task["train"], task["test"]):
            path = files[side["source"]]
            tables.setdefault(path, load(path))
            sides.append(select(tables[path], task, side))
        (x_train, y_train), (x_test, y_test) = sides
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=20000))
        pipe.fit(x_train, y_train)
        proba = pipe.predict_proba(x_test)
        tight = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cg", tol=1e-9, max_iter=1000))
        tight.fit(x_train, y_train)
        proba_tight = tight.predict_proba(x_test)
        classes = pipe.classes_
        balanced = balanced_accuracy_score(y_test, pipe.predict(x_test))
        columns = [(None, 1)] if task["binary"] else [(int(c), i) for i, c in enumerate(classes)]
        for cls, column in columns:
            positive = y_test == (1 if cls is None else cls)
            scores = proba[:, column]
            boot = [roc_auc_score(positive[idx], scores[idx]) for idx in indices[len(y_test)]]
            # The same at the exact optimum (sklearn's newton-cg to max |gradient| 1e-9; lbfgs
            # stops on its relative-decrease test near |gradient| 1e-3 whatever tol says): the
            # bootstrap and Wilcoxon mechanics then compare without the lbfgs stopping noise.
            # AUROC as the Mann-Whitney U of scipy over n1 n0 (one rounding, as greenfound
            # computes it; roc_auc_score's trapezoid sum differs in the last bits, which moves
            # exact zeros and ties of the paired differences the Wilcoxon test sees).
            def mann_whitney_auc(pos, sc):
                return mannwhitneyu(sc[pos], sc[~pos]).statistic / (pos.sum() * (~pos).sum())
            boot_tight = [mann_whitney_auc(positive[idx], proba_tight[idx, column]) for idx in indices[len(y_test)]]
            records.append({
                "model": model, "task": task["name"], "class": cls,
                "auroc": roc_auc_score(positive, scores),
                "auroc_tight": roc_auc_score(positive, proba_tight[:, column]),
                "auroc_median": float(np.median(boot)),
                "auroc_ci_low": float(np.percentile(boot, 2.5)),
                "auroc_ci_high": float(np.percentile(boot, 97.5)),
                "auroc_median_tight": float(np.median(boot_tight)),
                "auroc_ci_low_tight": float(np.percentile(boot_tight, 2.5)),
                "auroc_ci_high_tight": float(np.percentile(boot_tight, 97.5)),
                "auprc": average_precision_score(positive, scores),
                "balanced_accuracy": balanced,
                "n_train": int(len(y_train)), "n_test": int(len(y_test)),
                "proba": proba.tolist(), "proba_tight": proba_tight.tolist(),
            })
            per_class.setdefault(cls, []).append((model, boot, boot_tight))
    for cls, entries in per_class.items():
        comparison = {"task": task["name"], "class": cls}
        for suffix, which in (("", 1), ("_tight", 2)):
            medians = [np.median(e[which]) for e in entries]
            order = sorted(range(len(entries)), key=lambda i: (-medians[i], i))
            best, second = entries[order[0]], entries[order[1]]
            comparison.update({"best" + suffix: best[0], "second" + suffix: second[0],
                               "p_value" + suffix: float(wilcoxon(best[which], second[which]).pvalue)})
        comparisons.append(comparison)
json.dump({"records": records, "comparisons": comparisons}, open(sys.argv[2], "w"))
