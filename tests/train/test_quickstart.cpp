// The quickstart's run configs: the budgets it reports (400 and 600 bits) are
// the ones its configs give, counted by hand.
#include <catch2/catch.hpp>

#include "models/method_registry.h"
#include "models/pqvae/pqvae.h"
#include "models/quantizers/adaptive_klt.h"
#include "train/quickstart.h"

using namespace semcodec;

TEST_CASE("quickstart configs: PQVAE-shared at 400 and 600 raw bits, adaptive_klt at its targets", "[quickstart]") {
  QuickstartOptions o;
  o.out = "qs";
  o.threads = 1;
  for (const auto& [k, bits] : {std::pair<int64_t, int64_t>{4, 400}, {8, 600}}) {
    const RunConfig c = quickstart_pqvae_config(o, "qs/synthetic.h5", k);
    // 25 positions x 128 / 16 sub-vectors x log2 K bits.
    CHECK(25 * (128 / c.model.d_sub) * (k == 4 ? 2 : 3) == bits);
    CHECK(pqvae_raw_bits(c.model) == bits);
    CHECK(c.output.dir == "qs/pqvae-shared-" + std::to_string(bits));
    CHECK(c.model.method == "pqvae_shared");
    CHECK(c.data.split.heldout_classes == 200);
    CHECK(c.train.threads == 1);
    CHECK(c.train.max_steps_per_epoch == 125);
    CHECK_NOTHROW(validate(c, "quickstart"));
  }
  const RunConfig klt = quickstart_klt_config(o, "qs/synthetic.h5", 600);
  CHECK(klt.model.method == "adaptive_klt");
  CHECK(klt.model.options<AdaptiveKLTOptions>().target_bits == 600.0);
  CHECK(klt.output.dir == "qs/adaptive-klt-600");
  CHECK_NOTHROW(validate(klt, "quickstart"));
}
