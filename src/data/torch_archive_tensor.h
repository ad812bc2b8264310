// PyTorch-archive tensors (data/torch_archive.h) as at::Tensor.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "data/torch_archive.h"

namespace semcodec {

c10::ScalarType to_scalar_type(TorchDtype dtype);

// A CPU tensor with the file's dtype, shape, strides and storage offset that
// views the archive's storage without copying (the tensor keeps the storage
// alive; views of one storage in the file share memory, as in PyTorch).
// The file's location tag (e.g. "cuda:0") is not followed: call .to(device).
at::Tensor to_at_tensor(const TorchTensorPtr& tensor);

// read_torch_archive + torch_named_tensors + to_at_tensor: the name -> tensor
// map of a state dict, a tensor tuple or a TorchScript module's attributes
// (see torch_named_tensors for the names).
std::map<std::string, at::Tensor> read_torch_tensors(const std::string& path, const TorchArchiveLimits& limits = {});

}  // namespace semcodec
