#include "data/torch_archive_tensor.h"

#include <ATen/ATen.h>

#include "util/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "torch_archive_tensor.cpp assumes a little-endian host (the archives' storages are little-endian)"
#endif

namespace semcodec {

c10::ScalarType to_scalar_type(TorchDtype dtype) {
  switch (dtype) {
    case TorchDtype::Float64: return at::kDouble;
    case TorchDtype::Float32: return at::kFloat;
    case TorchDtype::Float16: return at::kHalf;
    case TorchDtype::BFloat16: return at::kBFloat16;
    case TorchDtype::Int64: return at::kLong;
    case TorchDtype::Int32: return at::kInt;
    case TorchDtype::Int16: return at::kShort;
    case TorchDtype::Int8: return at::kChar;
    case TorchDtype::UInt8: return at::kByte;
    case TorchDtype::Bool: return at::kBool;
  }
  fail("to_scalar_type: unknown dtype");
}

at::Tensor to_at_tensor(const TorchTensorPtr& tensor) {
  require(tensor && tensor->storage, "to_at_tensor: no tensor");
  std::shared_ptr<const TorchStorage> storage = tensor->storage;
  // The reader made the storage mutable and only hands it out as const; the
  // tensor may write to it like any PyTorch tensor writes to its storage.
  void* data = const_cast<uint8_t*>(storage->bytes.data());
  const at::Tensor whole = at::from_blob(
      data, {static_cast<int64_t>(storage->numel)}, [storage](void*) {},
      at::TensorOptions().dtype(to_scalar_type(storage->dtype)).device(at::kCPU));
  return whole.as_strided(tensor->shape, tensor->strides, tensor->storage_offset);
}

std::map<std::string, at::Tensor> read_torch_tensors(const std::string& path, const TorchArchiveLimits& limits) {
  const TorchArchive archive = read_torch_archive(path, limits);
  std::map<std::string, at::Tensor> out;
  for (const auto& [name, t] : torch_named_tensors(archive.root, path, limits)) out.emplace(name, to_at_tensor(t));
  return out;
}

}  // namespace semcodec
