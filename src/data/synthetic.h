// The built-in synthetic CLIP-like dataset: image features and class text
// embeddings that behave like OpenAI CLIP ViT-L/14 features of ImageNet val
// (unit norm, modality gap, anisotropic low-rank spectrum, superclass
// structure, ~80-85% zero-shot 200-way top-1). The generative model, its
// parameters and the measured statistics are in docs/synthetic.md.
//
// Deterministic: every random number comes from a built-in counter-seeded
// PRNG (splitmix64 + xoshiro256** + Box-Muller), never from torch's or the
// standard library's generators, so the same options give the same bytes on
// every machine up to the float rounding of matrix products.
#pragma once
#include "data/feature_set.h"

#include <cstdint>

namespace semcodec {

struct SyntheticOptions {
  int64_t num_classes = 1000;  // C
  int64_t per_class = 50;      // images per class; rows are class-major
  int64_t dim = 768;           // D (>= 16)
  uint64_t seed = 0;

  // Shape of the semantic structure.
  int64_t num_superclasses = 50;  // hierarchy level above classes (0 = none)
  double superclass_share = 0.5;  // fraction of a class centre's energy shared with its superclass
  int64_t semantic_rank = 128;    // r_s: dimension of the class (semantic) subspace
  int64_t nuisance_rank = 256;    // r_n: directions of class-independent image variation
  double spectrum_decay = 1.0;    // variance of the k-th semantic direction ∝ k^-spectrum_decay
  double nuisance_decay = 0.5;    // variance of the k-th nuisance direction ∝ k^-nuisance_decay

  // Energy budget of an image feature before normalisation (the rest is isotropic noise).
  double image_offset = 0.52;     // common image direction: sets the mean image-image cosine
  double image_class = 0.20;      // class centre
  double image_text_alignment = 0.5;  // cos of the angle between the image and text semantic subspaces
  double image_within = 0.15;     // within-class variation inside the semantic subspace
  double image_nuisance = 0.09;   // class-independent variation in the image-only subspace
  double offset_jitter = 0.10;    // per-image relative spread of the common-offset magnitude
  double difficulty_spread = 0.3; // std of log of a per-class scale of within-class variation

  // Energy budget of a text embedding (the rest is isotropic noise).
  double text_offset = 0.50;      // common text direction: sets the mean text-text cosine
  double text_class = 0.36;       // the class centre shared with the images
  double text_specific = 0.12;    // class-specific text-only deviation in the semantic subspace
  double offset_cosine = 0.25;    // cosine between the image and the text offset directions
};

// Rows c*per_class .. (c+1)*per_class-1 belong to class c; labels int64; ids
// "synthetic/<row>"; class names "synthetic class <c>"; class_embeddings [C, D]
// unit-norm; attrs encoder_model "synthetic-clip-v1", dataset "synthetic".
// Throws semcodec::Error on invalid options.
FeatureSet make_synthetic(const SyntheticOptions& options = SyntheticOptions{});

}  // namespace semcodec
