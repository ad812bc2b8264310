// Precompiled header for the layers that use LibTorch. Only the build includes
// this file; sources include what they use.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/autograd.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include "util/fmt_shape.h"
#include <string>
#include <vector>
