#include "util/distributed_env.h"

#include <cstdlib>

#include "util/error.h"

namespace semcodec {

namespace {

int64_t parse_int(const char* name, const char* value, int64_t lo, int64_t hi) {
  const std::string s = value;
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  require(used == s.size() && !s.empty(), "environment variable {}='{}' is not an integer", name, s);
  require(v >= lo && v <= hi, "environment variable {}={} is outside [{}, {}]", name, v, lo, hi);
  return v;
}

// Zero-padded ranges keep their width: "01-03" -> 01, 02, 03.
void expand_range(const std::string& prefix, const std::string& item, std::vector<std::string>& out,
                  const std::string& list) {
  const size_t dash = item.find('-');
  if (dash == std::string::npos) {
    out.push_back(prefix + item);
    return;
  }
  const std::string a = item.substr(0, dash), b = item.substr(dash + 1);
  require(!a.empty() && !b.empty() && a.find_first_not_of("0123456789") == std::string::npos &&
              b.find_first_not_of("0123456789") == std::string::npos,
          "SLURM node list '{}': bad range '{}'", list, item);
  const long long lo = std::stoll(a), hi = std::stoll(b);
  require(lo <= hi && hi - lo < 100000, "SLURM node list '{}': bad range '{}'", list, item);
  for (long long v = lo; v <= hi; ++v) {
    std::string n = std::to_string(v);
    if (n.size() < a.size()) n.insert(0, a.size() - n.size(), '0');
    out.push_back(prefix + n);
  }
}

}  // namespace

std::vector<std::string> expand_slurm_nodelist(const std::string& list) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < list.size()) {
    // One host expression: prefix, optionally followed by [ranges], up to a top-level comma.
    size_t j = i;
    while (j < list.size() && list[j] != ',' && list[j] != '[') ++j;
    const std::string prefix = list.substr(i, j - i);
    if (j < list.size() && list[j] == '[') {
      const size_t close = list.find(']', j);
      require(close != std::string::npos, "SLURM node list '{}': unclosed '['", list);
      const std::string inner = list.substr(j + 1, close - j - 1);
      require(!inner.empty(), "SLURM node list '{}': empty '[]'", list);
      size_t k = 0;
      while (k <= inner.size()) {
        size_t comma = inner.find(',', k);
        if (comma == std::string::npos) comma = inner.size();
        expand_range(prefix, inner.substr(k, comma - k), out, list);
        k = comma + 1;
      }
      j = close + 1;
      require(j == list.size() || list[j] == ',', "SLURM node list '{}': text after ']'", list);
    } else {
      require(!prefix.empty(), "SLURM node list '{}': empty host name", list);
      out.push_back(prefix);
    }
    i = j + 1;
  }
  return out;
}

DistEnv dist_env_from(const std::function<const char*(const char*)>& getenv) {
  DistEnv e;
  constexpr int64_t kMaxRanks = int64_t{1} << 20;
  if (getenv("WORLD_SIZE") || getenv("RANK")) {
    e.launcher = "torchrun";
    require(getenv("WORLD_SIZE") && getenv("RANK"), "RANK and WORLD_SIZE must be set together (torchrun sets both)");
    e.world_size = parse_int("WORLD_SIZE", getenv("WORLD_SIZE"), 1, kMaxRanks);
    e.rank = parse_int("RANK", getenv("RANK"), 0, e.world_size - 1);
    e.local_rank = getenv("LOCAL_RANK") ? parse_int("LOCAL_RANK", getenv("LOCAL_RANK"), 0, e.world_size - 1) : 0;
    if (getenv("MASTER_ADDR")) e.master_addr = getenv("MASTER_ADDR");
    if (getenv("MASTER_PORT")) e.master_port = parse_int("MASTER_PORT", getenv("MASTER_PORT"), 1, 65535);
  } else if (getenv("SLURM_NTASKS") && getenv("SLURM_PROCID")) {
    e.launcher = "slurm";
    e.world_size = parse_int("SLURM_NTASKS", getenv("SLURM_NTASKS"), 1, kMaxRanks);
    e.rank = parse_int("SLURM_PROCID", getenv("SLURM_PROCID"), 0, e.world_size - 1);
    e.local_rank = getenv("SLURM_LOCALID") ? parse_int("SLURM_LOCALID", getenv("SLURM_LOCALID"), 0, e.world_size - 1)
                                           : 0;
    // The master is the first host of the job unless MASTER_ADDR says otherwise.
    if (getenv("MASTER_ADDR")) {
      e.master_addr = getenv("MASTER_ADDR");
    } else {
      const char* nodes = getenv("SLURM_JOB_NODELIST") ? getenv("SLURM_JOB_NODELIST") : getenv("SLURM_NODELIST");
      require(nodes || e.world_size == 1, "SLURM job without SLURM_JOB_NODELIST: set MASTER_ADDR");
      if (nodes) e.master_addr = expand_slurm_nodelist(nodes).at(0);
    }
    if (getenv("MASTER_PORT")) e.master_port = parse_int("MASTER_PORT", getenv("MASTER_PORT"), 1, 65535);
  }
  return e;
}

DistEnv dist_env() {
  return dist_env_from([](const char* name) { return std::getenv(name); });
}

}  // namespace semcodec
