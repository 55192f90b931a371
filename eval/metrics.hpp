#pragma once
// Scores of one probe on one test set, as scikit-learn defines them.
#include <cstdint>
#include <vector>

namespace gf::eval {

// Area under the ROC curve as the Mann-Whitney statistic: tied scores count one half
// (average ranks), identical to sklearn's roc_auc_score. `positive[i]` marks the positives.
// NaN when either class is empty.
double auroc(const std::vector<double>& scores, const std::vector<uint8_t>& positive);
// The same on the rows `index` selects (repeats allowed: a bootstrap resample).
double auroc(const std::vector<double>& scores, const std::vector<uint8_t>& positive,
             const std::vector<int64_t>& index);

// sklearn's average_precision_score: sum over distinct thresholds of (R_n - R_{n-1}) P_n.
// NaN without positives.
double average_precision(const std::vector<double>& scores, const std::vector<uint8_t>& positive);

// sklearn's balanced_accuracy_score: mean recall over the classes present in y_true.
double balanced_accuracy(const std::vector<int64_t>& y_true, const std::vector<int64_t>& y_pred);

}  // namespace gf::eval
