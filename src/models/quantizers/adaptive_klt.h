// Adaptive KLT: transform coding of CLIP embeddings whose transform adapts to
// each stream (docs/adaptive_klt.md).
//
// Fitted on training rows: their mean m0, their principal directions U0 (the
// KLT), and a bank of entropy tables and reconstruction points, one per class
// of "spread over step" (sigma / step, 4 classes per octave), learned from the
// training coefficients quantized at many steps.
//
// A stream (many rows coded together) is coded against side information the
// encoder derives from the stream itself and sends once:
//   - the stream's mean m (its offset from m0, fine fixed step);
//   - the stream's own leading principal directions V (k of them, each
//     quantized with a step tied to its variance, then orthonormalized on both
//     sides by the same deterministic Gram-Schmidt);
//   - the scalar step of the items and one table class per coefficient.
// Each item x is coded as y = [V W]^T (x - m), where W completes V to an
// orthonormal basis with training directions (the encoder names which, the
// decoder orthonormalizes them the same way); each coefficient is rounded with
// a dead zone and entropy coded with its class's table; the encoder picks k,
// the basis precision and the step so that the whole stream (side information
// included) meets model.klt_target_bits per item,
// keeping the candidate with the smallest reconstruction error.
//
// This is why it transfers: a dataset the fit never saw spreads its variance
// over directions that are minor in the training data; its own mean and
// directions, sent once, cost a few bits per item when amortized over a stream.
//
// Single items (encode()/decode() without side information, packets) use the
// default context: m0, U0, the default step for target_bits on the training
// rows and their classes.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/quantizers/fitted_quantizer.h"
#include "models/quantizers/stream_adaptive.h"
#include "util/config_fields.h"

namespace semcodec {

// model.klt_* keys (docs/config.md).
struct AdaptiveKLTOptions {
  double target_bits = 400;        // per item, all stream side information included
  double deadzone = 0.3;           // rounding offset: |y|/step < 0.5 + deadzone -> 0
  int64_t max_symbol = 127;        // coefficients are clamped to [-max_symbol, max_symbol] steps
  bool stream_mean = true;         // send each stream's mean (false: code around the training mean)
  int64_t max_stream_directions = 384;         // stream principal directions sent at most (0: training basis only)
  std::string basis_precisions = "0.5,1,2";    // beta candidates of the encoder (smaller = finer directions)
  int64_t fit_rows = 8000;         // training rows (an even stride) the table bank is learned from
  template <class V> void visit(V& v) {
    v.field("klt_target_bits", target_bits,
            "adaptive_klt: bits per item of a coded stream, its side information included (the encoder's rate "
            "control; single packets use the step that meets it on the training rows)",
            Limits::range(8, 1e6).added_later());
    v.field("klt_deadzone", deadzone, "adaptive_klt: rounding offset; |y| / step below 0.5 + deadzone codes as 0",
            Limits::range(0, 0.49).added_later());
    v.field("klt_max_symbol", max_symbol, "adaptive_klt: coefficients are clamped to +-this many steps",
            Limits::range(1, 32767).added_later());
    v.field("klt_stream_mean", stream_mean, "adaptive_klt: send each stream's mean in its side information",
            Limits{}.added_later());
    v.field("klt_max_stream_directions", max_stream_directions,
            "adaptive_klt: most principal directions of a stream its side information may carry (0: code in the "
            "training basis)",
            Limits::range(0, 65536).added_later());
    v.field("klt_basis_precisions", basis_precisions,
            "adaptive_klt: comma-separated beta values the encoder tries (a stream direction of variance lambda is "
            "sent with step beta * step / sqrt(lambda * D)); it keeps the one with the least error",
            Limits{}.added_later());
    v.field("klt_fit_rows", fit_rows, "adaptive_klt: training rows the table bank is learned from (an even stride)",
            Limits::range(1, 1e9).added_later());
  }
};

// "0.5,1,2" -> {0.5, 1, 2}; Error naming `source` for anything else.
std::vector<double> parse_basis_precisions(const std::string& text, const std::string& source);

class AdaptiveKLT final : public FittedQuantizer, public StreamAdaptive {
 public:
  // Table classes: class c (1..kClasses-1) holds coefficients with
  // sigma / step ~ 2^((c - kClassOffset) / kClassesPerOctave); class 0 is "all zero".
  static constexpr int kClassesPerOctave = 4;
  static constexpr int kClasses = 48;
  static constexpr int kClassOffset = 28;
  // Step of the stream mean's offset from the training mean.
  static constexpr double kMeanStep = 1.0 / 1024;
  static constexpr int kSideInfoVersion = 1;

  AdaptiveKLT(int64_t embed_dim, AdaptiveKLTOptions options);

  std::string name() const override { return "adaptive_klt"; }
  void fit(const at::Tensor& x) override;

  // Default context (single items).
  at::Tensor encode(const at::Tensor& x) override;
  at::Tensor decode(const at::Tensor& indices) override;
  int64_t slots() const override { return embed_dim_; }
  int64_t alphabet_size(int64_t slot) const override;
  int64_t embed_dim() const override { return embed_dim_; }

  // Streams.
  std::shared_ptr<const StreamSideInfo> plan_stream(const at::Tensor& x) override;
  std::shared_ptr<const StreamSideInfo> read_side_info(const uint8_t* data, size_t size) override;
  at::Tensor encode(const at::Tensor& x, const StreamSideInfo& side) override;
  at::Tensor decode(const at::Tensor& indices, const StreamSideInfo& side) override;
  const StreamSideInfo& packet_context() const override;

  bool is_trained() const override { return mean_.defined(); }
  // "mean" [D] f32, "basis" [D, D] f32 (columns: principal directions, variance
  // descending), "variance" [D] f32, "bank_counts" [C, 2A+1] i64,
  // "bank_centroids" [C, A+1] f32 (in steps), "default_step" [1] f64,
  // "default_classes" [D] i64.
  std::map<std::string, at::Tensor> state() const override;
  void load_state(const std::map<std::string, at::Tensor>& state, const std::string& source) override;

  const AdaptiveKLTOptions& options() const { return options_; }
  int64_t alphabet() const { return 2 * options_.max_symbol + 1; }
  double default_step() const { return default_step_; }
  // The table class of a coefficient with spread sigma coded at `step`.
  static int table_class(double sigma, double step);

  // What a planned stream looks like (for reports and tests).
  struct StreamStats {
    int64_t basis_vectors = 0;
    double step = 0, basis_precision = 0, side_bits = 0, code_bits = 0, bits_per_item = 0, mse = 0;
  };
  StreamStats stream_stats(const StreamSideInfo& side) const;

 private:
  struct Context;  // one stream's (or the default) decoding context
  void set_derived();
  at::Tensor coefficients(const at::Tensor& x_unit, const Context& ctx) const;   // [N, slots] float
  at::Tensor quantize(const at::Tensor& y, const Context& ctx) const;              // [N, slots] int64 indices
  at::Tensor reconstruct(const at::Tensor& indices, const Context& ctx) const;    // [N, D] float, unit rows
  double code_bits(const at::Tensor& indices, const Context& ctx) const;          // ideal, all items
  std::shared_ptr<StreamSideInfo> finish_side_info(std::shared_ptr<Context> ctx) const;
  std::vector<uint8_t> write_side_info(const Context& ctx) const;
  const Context& context_of(const StreamSideInfo& side) const;

  int64_t embed_dim_;
  AdaptiveKLTOptions options_;
  std::vector<double> basis_precisions_;
  at::Tensor mean_, basis_, variance_, bank_counts_, bank_centroids_, default_classes_;  // state
  double default_step_ = 0;
  // Derived from the state.
  std::vector<std::vector<double>> code_length_;  // [class][index] bits under the bank table
  std::vector<double> class_entropy_;             // expected bits of a coefficient of each class
  std::shared_ptr<Context> default_context_;
};

}  // namespace semcodec
