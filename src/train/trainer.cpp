#include "train/trainer.h"

#include "models/method_registry.h"
#include "train/network_training.h"
#include "train/one_pass_fit.h"

namespace semcodec {

TrainResult train_run(const RunConfig& cfg, const TrainOptions& opt) {
  validate_method_keys(cfg.model, opt.config_source);
  switch (method_info(cfg.model.method).kind) {
    case MethodKind::network: return train_network(cfg, opt);
    case MethodKind::fitted: return fit_in_one_pass(cfg, opt);
  }
  fail("{}: model.method '{}' has an unknown kind", opt.config_source, cfg.model.method);
}

}  // namespace semcodec
