"""Reference values for test_eval_statistics: scikit-learn metrics, numpy's bootstrap
indices/median/percentile and scipy's Wilcoxon test on the cases the C++ test wrote."""
import json
import sys
import warnings

import numpy as np
from scipy.stats import wilcoxon
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

warnings.simplefilter("ignore")
cases = json.load(open(sys.argv[1]))
out = {
    "auroc": [roc_auc_score(c["labels"], c["scores"]) for c in cases["auroc"]],
    "average_precision": [average_precision_score(c["labels"], c["scores"]) for c in cases["auroc"]],
    "balanced_accuracy": [balanced_accuracy_score(c["y_true"], c["y_pred"]) for c in cases["balanced"]],
    "median": [float(np.median(v)) for v in cases["quantiles"]],
    "percentile_low": [float(np.percentile(v, 2.5)) for v in cases["quantiles"]],
    "percentile_high": [float(np.percentile(v, 97.5)) for v in cases["quantiles"]],
    "wilcoxon": [],
    "bootstrap": {},
}
for c in cases["wilcoxon"]:
    result = wilcoxon(np.array(c["x"]), np.array(c["y"]))
    out["wilcoxon"].append({"statistic": float(result.statistic), "p_value": float(result.pvalue)})
for case in cases["bootstrap"]:
    # The published get_bootstrap_aucs: one RandomState(42), rng.choice(idxs, size=len(idxs)).
    rng = np.random.RandomState(seed=case["seed"])
    idxs = list(range(case["n"]))
    out["bootstrap"][str(case["n"])] = [rng.choice(idxs, size=len(idxs), replace=True).tolist()
                                        for _ in range(case["count"])]
json.dump(out, open(sys.argv[2], "w"))
