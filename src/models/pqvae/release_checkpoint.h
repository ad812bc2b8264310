// The paper authors' PyTorch release (CLIP_compress) saves its network as
// `torch.save(feature_compression.state_dict())`: float32 tensors named
// encoder.initial_conv{1,2}, encoder.residual_stack.stack.<i>.res_block.{1,3},
// encoder.pre_quant_conv, decoder.post_quant_conv, decoder.residual_stack...,
// decoder.final_conv{1,2} and quantize.embedding.weight [K, d_sub]. It is
// PQVAE-shared layer for layer (docs/architecture.md): same weight layouts,
// same channel-last latent cut into consecutive d_sub sub-vectors
// (shared_codebook_pq.h), so its weights map one to one onto ours.
#pragma once
#include <string>

#include "models/checkpoint.h"
#include "models/run_config.h"

namespace semcodec {

// A semcodec checkpoint (method pqvae_shared) holding the release state dict
// at `path`: every size of the network (embed_dim, hidden, body, residual
// layers and channels, latent channels, d_sub, K) is read off the shapes.
// The run config is `base` with those sizes and the release's network
// settings (no centring, float32 compute, uniform codebook init). The file is
// read without executing anything (data/torch_archive.h). A name missing or
// left over, a shape that fits no PQVAE-shared, or a non-float tensor is an
// Error naming `path` and every problem.
Checkpoint checkpoint_from_release(const std::string& path, const RunConfig& base = RunConfig{});

}  // namespace semcodec
