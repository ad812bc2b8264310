// Reading CLIP weights from the files they are shared in, into OpenAI's
// parameter names:
//   - a plain torch.save of the state dict (zip format, PyTorch >= 1.6), as
//     open_clip and fine-tuning scripts share them;
//   - OpenAI's released .pt files: TorchScript archives whose parameters and
//     buffers are read by name (the archive's code is never compiled or run);
// both through data/torch_archive.h, which refuses any pickle global other
// than tensor rebuilding and plain containers.
//   - safetensors, with Hugging Face names (openai/clip-vit-*
//     model.safetensors, mapped and q/k/v fused) or OpenAI names.
// The format is recognized by content, not by file name.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "models/clip/clip_model.h"

namespace semcodec {

enum class ClipWeightFormat { TorchSave, TorchScript, Safetensors };
const char* to_string(ClipWeightFormat format);

// Looks at the file's bytes (zip records, safetensors header). Throws for an
// unreadable or unrecognized file, and for the pre-1.6 torch.save format.
ClipWeightFormat detect_clip_weight_format(const std::string& path);

// Every tensor of the file under OpenAI's names, on the CPU, in the dtype
// stored (OpenAI's archives hold float16 matrices). Not validated here:
// ClipModel checks names and shapes.
std::map<std::string, at::Tensor> read_clip_weights(const std::string& path);

// Hugging Face CLIPModel names -> OpenAI names: q/k/v projections are
// concatenated into in_proj, the projection matrices transposed,
// position_ids dropped. Keys it does not know keep their names (and are
// then reported as unexpected).
std::map<std::string, at::Tensor> clip_weights_from_hugging_face(const std::map<std::string, at::Tensor>& hf);
// The Hugging Face name of an OpenAI parameter name (for error messages);
// in_proj maps to "...self_attn.{q,k,v}_proj.<weight|bias>". Unknown names
// are returned unchanged.
std::string clip_hugging_face_name(const std::string& openai_name);

// read_clip_weights + ClipModel (float32 on the CPU; call to() to move it).
// Errors name the file and list missing, unexpected and mis-shaped keys.
ClipModel load_clip(const std::string& path);

}  // namespace semcodec
