#pragma once
// make_pipeline(StandardScaler(), LogisticRegression(C=1)) of scikit-learn, solved to
// convergence in double precision: the same optimum sklearn's lbfgs approaches.
//
// Tolerance: Newton stops at max |gradient of the mean loss| <= 1e-10 (gradient_tol). The
// published pipeline's lbfgs (scikit-learn's defaults, max_iter=20000) stops much earlier: at
// tol 1e-4 on the projected gradient, or on scipy's relative-decrease test (ftol = 64 x
// machine eps), which in practice ends near |gradient| 1e-3. Its probabilities then differ
// from the optimum in the 3rd-4th digit, enough to swap the order of two close test scores:
// an AUROC may differ from scikit-learn's by one discordant pair, 1/(n_pos x n_neg) (up to
// 2e-3 on the small test sets of tests/eval), and a bootstrap median or a Wilcoxon p-value
// with it. Against scikit-learn solved tightly (newton-cg, tol 1e-9) AUROCs agree to 1e-6.
#include <ATen/ATen.h>

#include <cstdint>

namespace gf::eval {

// sklearn's StandardScaler: mean and population std (ddof 0) of the training rows; a
// feature sklearn deems constant (var <= n*eps*var + (n*mean*eps)^2) keeps scale 1.
struct StandardScaler {
  at::Tensor mean, scale;  // [D] double

  void fit(const at::Tensor& x);                    // x: [N, D]
  at::Tensor transform(const at::Tensor& x) const;  // double [N, D]
};

struct LogisticOptions {
  double c = 1.0;                // inverse L2 strength on the weights; the intercept is free
  double gradient_tol = 1e-10;   // max |gradient| of the mean loss at which Newton stops
  int max_newton_iterations = 200;
};

// L2 logistic regression: binary (one sigmoid weight vector, as sklearn for two classes) or
// multinomial (softmax over K classes). Solved by a truncated Newton method (Jacobi
// preconditioned conjugate gradients on Hessian-vector products, Armijo backtracking).
class LogisticRegression {
 public:
  explicit LogisticRegression(LogisticOptions options = {}) : options_(options) {}

  // x: [N, D] (standardised); y: [N] int64 class indices 0..num_classes-1, num_classes >= 2,
  // every class present. Throws when Newton does not reach the tolerance.
  void fit(const at::Tensor& x, const at::Tensor& y, int64_t num_classes);
  // [N, K] class probabilities (K = 2 for binary: [1 - p, p]), double.
  at::Tensor predict_proba(const at::Tensor& x) const;

  int iterations() const { return iterations_; }

 private:
  LogisticOptions options_;
  at::Tensor weights_, intercept_;  // [D, K'] and [K'] (K' = 1 binary)
  int64_t num_classes_ = 0;
  int iterations_ = 0;
  double final_gradient_ = 0;
};

}  // namespace gf::eval
