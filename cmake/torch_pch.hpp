#pragma once
// The LibTorch headers most translation units use; precompiled once (cmake/targets.cmake).
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules.h>
#include <torch/nn/functional.h>
#include <torch/optim/adamw.h>
#include <torch/autograd.h>
#include <vector>
#include <string>
#include <memory>
#include <map>
