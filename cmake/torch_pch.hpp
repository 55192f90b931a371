#pragma once
// The LibTorch headers most translation units use; precompiled once (cmake/targets.cmake).
#include <ATen/ATen.h>
#include <torch/nn.h>
#include <torch/optim/adamw.h>
#include <torch/autograd.h>
#include <map>
#include <memory>
#include <string>
#include <vector>
