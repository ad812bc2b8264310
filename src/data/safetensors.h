// Reading and writing the safetensors format (Hugging Face): an 8-byte
// little-endian header size N, N bytes of JSON describing every tensor
// (dtype, shape, byte range), then the raw little-endian C-order data.
//
// Files come from checkpoints and downloads and are treated as untrusted: the
// reader validates every size and range before allocating or copying, and
// reports problems as semcodec::Error naming the file and the tensor.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <string_view>

namespace semcodec {

struct SafetensorsFile {
  std::map<std::string, at::Tensor> tensors;       // CPU, contiguous, own their memory
  std::map<std::string, std::string> metadata;     // the "__metadata__" object
};

// Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL.
//
// Writes atomically (temporary file beside `path`, renamed once complete).
// Tensors are detached, moved to the CPU and made contiguous. The output is
// deterministic: tensors are packed by element size (largest first, so every
// tensor starts at a multiple of its element size) and then by name; the
// header lists "__metadata__" first (omitted when empty), then the tensors in
// data order, and is padded with spaces to a multiple of 8 bytes.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The complete serialized file as bytes (what write_safetensors writes).
std::string serialize_safetensors(const std::map<std::string, at::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// Reads and validates a whole file. Tensor data is read straight into the
// returned tensors (the file is not buffered as a whole).
SafetensorsFile read_safetensors(const std::string& path);

// Parses a file already in memory; `name` labels errors (normally the path).
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name);

// Reads only the header (validated against the file's size) and returns the
// metadata.
std::map<std::string, std::string> read_safetensors_metadata(const std::string& path);

}  // namespace semcodec
