#include "eval/logistic_probe.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace gf::eval {
namespace {

// Below this max |gradient| a failed line search means the objective's rounding noise was
// reached (double precision, mean loss of order 1), which counts as converged.
constexpr double kRoundingFloor = 1e-7;

// The mean-scaled objective of sklearn's LogisticRegression, f = mean(loss) + lambda/2 |W|^2
// with lambda = 1 / (C N): the same optimum as sklearn's C * sum(loss) + |W|^2 / 2. Parameters
// are one [D+1, K'] tensor, the last row the (unpenalised) intercept; x carries a ones column.
class Objective {
 public:
  Objective(const at::Tensor& x, const at::Tensor& y, int64_t num_classes, double c)
      : x_(at::cat({x, at::ones({x.size(0), 1}, x.options())}, 1)),
        binary_(num_classes == 2),
        n_(static_cast<double>(x.size(0))),
        lambda_(1.0 / (c * n_)) {
    if (binary_) {
      target_ = y.to(at::kDouble).unsqueeze(1);
    } else {
      target_ = at::zeros({x.size(0), num_classes}, x.options());
      target_.scatter_(1, y.unsqueeze(1), 1.0);
    }
    penalised_ = at::ones({x_.size(1), 1}, x.options());
    penalised_[x_.size(1) - 1] = 0.0;
    squared_x_ = x_ * x_;
  }

  int64_t outputs() const { return binary_ ? 1 : target_.size(1); }
  int64_t features() const { return x_.size(1); }

  double value(const at::Tensor& theta) const {
    const at::Tensor z = at::matmul(x_, theta);
    at::Tensor loss;
    if (binary_) {
      // log(1 + e^z) - y z, stable for large |z|.
      loss = at::log1p(at::exp(-z.abs())) + z.clamp_min(0) - target_ * z;
    } else {
      loss = at::logsumexp(z, 1, true) - (target_ * z).sum(1, true);
    }
    return loss.sum().item<double>() / n_ + 0.5 * lambda_ * (theta * theta * penalised_).sum().item<double>();
  }

  // Gradient at theta; caches what the Hessian-vector products and the preconditioner need.
  at::Tensor gradient(const at::Tensor& theta) {
    const at::Tensor z = at::matmul(x_, theta);
    probabilities_ = binary_ ? at::sigmoid(z) : at::softmax(z, 1);
    const at::Tensor residual = probabilities_ - target_;
    return at::matmul(x_.t(), residual) / n_ + lambda_ * penalised_ * theta;
  }

  at::Tensor hessian_vector(const at::Tensor& v) const {
    const at::Tensor u = at::matmul(x_, v);
    at::Tensor r;
    if (binary_) {
      r = probabilities_ * (1 - probabilities_) * u;
    } else {
      const at::Tensor pu = probabilities_ * u;
      r = pu - probabilities_ * pu.sum(1, true);
    }
    return at::matmul(x_.t(), r) / n_ + lambda_ * penalised_ * v;
  }

  // Diagonal of the Hessian (Jacobi preconditioner), floored away from zero.
  at::Tensor hessian_diagonal() const {
    const at::Tensor curvature = probabilities_ * (1 - probabilities_);
    return (at::matmul(squared_x_.t(), curvature) / n_ + lambda_ * penalised_).clamp_min(1e-12);
  }

 private:
  at::Tensor x_, target_, penalised_, squared_x_, probabilities_;
  bool binary_;
  double n_, lambda_;
};

double sum_of_products(const at::Tensor& a, const at::Tensor& b) { return (a * b).sum().item<double>(); }

// Preconditioned conjugate gradients for H p = -g, stopped at |r| <= eta |g| (truncated Newton).
at::Tensor newton_direction(const Objective& objective, const at::Tensor& g) {
  const double g_norm = std::sqrt(sum_of_products(g, g));
  const double eta = std::min(0.5, std::sqrt(g_norm));
  const at::Tensor preconditioner = objective.hessian_diagonal();
  at::Tensor p = at::zeros_like(g);
  at::Tensor r = -g;
  at::Tensor z = r / preconditioner;
  at::Tensor d = z.clone();
  double rz = sum_of_products(r, z);
  const int64_t max_iterations = 2 * g.numel() + 50;
  for (int64_t i = 0; i < max_iterations; ++i) {
    if (std::sqrt(sum_of_products(r, r)) <= eta * g_norm) break;
    const at::Tensor hd = objective.hessian_vector(d);
    const double curvature = sum_of_products(d, hd);
    if (curvature <= 0) break;  // numerically flat direction: keep what we have
    const double step = rz / curvature;
    p += step * d;
    r -= step * hd;
    z = r / preconditioner;
    const double rz_next = sum_of_products(r, z);
    d = z + (rz_next / rz) * d;
    rz = rz_next;
  }
  return p.abs().max().item<double>() > 0 ? p : -g;
}

}  // namespace

void StandardScaler::fit(const at::Tensor& x) {
  const at::Tensor xd = x.to(at::kDouble);
  const double n = static_cast<double>(xd.size(0));
  mean = xd.mean(0);
  const at::Tensor variance = (xd - mean).pow(2).mean(0);
  // sklearn's _is_constant_feature: variance within rounding of zero is treated as zero.
  const double eps = std::numeric_limits<double>::epsilon();
  const at::Tensor bound = n * eps * variance + (n * mean * eps).pow(2);
  scale = at::where(variance <= bound, at::ones_like(variance), variance.sqrt());
}

at::Tensor StandardScaler::transform(const at::Tensor& x) const {
  return (x.to(at::kDouble) - mean) / scale;
}

void LogisticRegression::fit(const at::Tensor& x, const at::Tensor& y, int64_t num_classes) {
  if (num_classes < 2)
    throw std::runtime_error("logistic regression: found " + std::to_string(num_classes) +
                             " class in the training set, expected at least 2");
  num_classes_ = num_classes;
  Objective objective(x.to(at::kDouble), y.to(at::kLong), num_classes, options_.c);
  at::Tensor theta = at::zeros({objective.features(), objective.outputs()}, at::kDouble);
  double f = objective.value(theta);
  iterations_ = 0;
  for (; iterations_ < options_.max_newton_iterations; ++iterations_) {
    const at::Tensor g = objective.gradient(theta);
    final_gradient_ = g.abs().max().item<double>();
    if (final_gradient_ <= options_.gradient_tol) break;
    const at::Tensor p = newton_direction(objective, g);
    const double slope = sum_of_products(g, p);
    double t = 1.0, f_next = f;
    bool accepted = false;
    for (int halving = 0; halving < 60; ++halving, t *= 0.5) {
      f_next = objective.value(theta + t * p);
      if (f_next <= f + 1e-4 * t * slope) {
        accepted = true;
        break;
      }
    }
    // No decrease left to find: the gradient is at the rounding floor of the objective.
    if (!accepted) {
      if (final_gradient_ <= kRoundingFloor) break;
      throw std::runtime_error("logistic regression: line search failed at max |gradient| " +
                               std::to_string(final_gradient_) + ", expected a descent step");
    }
    theta += t * p;
    f = f_next;
  }
  if (final_gradient_ > options_.gradient_tol && final_gradient_ > kRoundingFloor)
    throw std::runtime_error("logistic regression: max |gradient| " + std::to_string(final_gradient_) +
                             " after " + std::to_string(iterations_) + " Newton steps, expected <= " +
                             std::to_string(options_.gradient_tol));
  weights_ = theta.narrow(0, 0, theta.size(0) - 1).clone();
  intercept_ = theta[theta.size(0) - 1].clone();
}

at::Tensor LogisticRegression::predict_proba(const at::Tensor& x) const {
  const at::Tensor z = at::matmul(x.to(at::kDouble), weights_) + intercept_;
  if (num_classes_ == 2) {
    const at::Tensor p = at::sigmoid(z);
    return at::cat({1 - p, p}, 1);
  }
  return at::softmax(z, 1);
}

}  // namespace gf::eval
