// Mutation campaign over feature files: makes mutants of real feature files
// and runs each, in a child process, through everything the CLI reads from a
// feature file (feature_file_exercise.h). The child has a timeout and, in a
// sanitizer build, ASan's allocation and RSS limits (else an address-space
// limit), so that crashes, hangs and huge allocations are all told apart from
// clean refusals.
//
//   h5_campaign --out DIR [--mutants N] [--seed S] [--jobs J] [--timeout SEC]
//               [--mem-mb MB] SEED.h5_OR_DIR...
//   h5_campaign --replay FILE_OR_DIR...     (in process, no fork; exit 1 on any
//                                            unclean exception)
// Seeds: make_data_seeds DIR --large writes DIR/feature_file/*.h5.
//
// Mutants are reproducible from (--seed, mutant index). Each finding is kept
// as DIR/findings/<kind>-<index>.h5 with the child's stderr beside it, and
// findings are grouped by a signature (the sanitizer's summary line and the
// first frames of its stack, or the signal). "contained" findings are crashes
// inside probe_hdf5_file's child process, which the readers turned into a
// clean error: listed, but not failures. The last lines printed are the
// campaign's figures; the exit status is 1 when anything else was found.
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>

#include "feature_file_exercise.h"

#if defined(__SANITIZE_ADDRESS__)
#define SEMCODEC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEMCODEC_ASAN 1
#endif
#endif

#ifdef SEMCODEC_ASAN
// Allocations above 512 MB, or 2 GB resident, are findings: every seed is
// smaller than 1 MB, so nothing legitimate comes near.
extern "C" const char* __asan_default_options() {
  return "max_allocation_size_mb=512:allocator_may_return_null=0:hard_rss_limit_mb=2048:exitcode=86:detect_leaks=0:"
         "handle_abort=1:fast_unwind_on_malloc=0:fast_unwind_on_fatal=0";
}
extern "C" void __sanitizer_print_stack_trace();
#endif

namespace fs = std::filesystem;
using semcodec::fuzz::exercise_feature_file;

namespace {

constexpr int kExitUnclean = 3;
constexpr int kExitHang = 4;

// The child's alarm: where it was stuck goes to its log.
void on_alarm(int) {
  static const char msg[] = "TIMEOUT: still running when the alarm rang\n";
  (void)!::write(2, msg, sizeof msg - 1);
#ifdef SEMCODEC_ASAN
  __sanitizer_print_stack_trace();
#endif
  ::_exit(kExitHang);
}

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool write_bytes(const std::string& path, const std::string& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
  return static_cast<bool>(out);
}

struct Seed {
  std::string path, bytes;
  std::vector<uint64_t> meta;  // offsets outside every dataset's raw data
};

// Marks the raw-data bytes of the seed's datasets, so that most mutations go
// to the metadata libhdf5 and the reader parse (raw data only changes values).
void mark_raw(const std::string& path, std::vector<bool>& raw) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return;
  for (const char* name : {"features", "labels", "ids", "class_names", "class_embeddings", "image_sizes"}) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) continue;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) continue;
    auto mark = [&](haddr_t a, hsize_t n) {
      if (a == HADDR_UNDEF) return;
      for (hsize_t k = 0; k < n && a + k < raw.size(); ++k) raw[a + k] = true;
    };
    hid_t dcpl = H5Dget_create_plist(d);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      hid_t sp = H5Dget_space(d);
      hsize_t n = 0;
      H5Dget_num_chunks(d, sp, &n);
      for (hsize_t i = 0; i < n; ++i) {
        hsize_t off[4] = {0, 0, 0, 0}, size = 0;
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        if (H5Dget_chunk_info(d, sp, i, off, &mask, &addr, &size) >= 0) mark(addr, size);
      }
      H5Sclose(sp);
    } else {
      mark(H5Dget_offset(d), H5Dget_storage_size(d));
    }
    H5Pclose(dcpl);
    H5Dclose(d);
  }
  H5Fclose(f);
}

Seed load_seed(const std::string& path) {
  Seed s;
  s.path = path;
  s.bytes = read_bytes(path);
  std::vector<bool> raw(s.bytes.size(), false);
  mark_raw(path, raw);
  for (uint64_t i = 0; i < raw.size(); ++i)
    if (!raw[i]) s.meta.push_back(i);
  if (s.meta.empty())
    for (uint64_t i = 0; i < raw.size(); ++i) s.meta.push_back(i);
  return s;
}

uint64_t pick_offset(Rng& rng, const Seed& s, uint64_t size) {
  if (size == 0) return 0;
  if (rng.below(100) < 85) {
    const uint64_t o = s.meta[rng.below(s.meta.size())];
    if (o < size) return o;
  }
  return rng.below(size);
}

// One mutation of `b`; returns a short description.
std::string mutate_once(Rng& rng, const Seed& s, std::string& b) {
  if (b.empty()) return "empty";
  const uint64_t n = b.size();
  switch (rng.below(7)) {
    case 0: {  // bit flips
      const int k = 1 + static_cast<int>(rng.below(4));
      for (int i = 0; i < k; ++i) b[pick_offset(rng, s, n)] ^= static_cast<char>(1u << rng.below(8));
      return "flip" + std::to_string(k);
    }
    case 1: {  // 7 bytes changed at random places (the reproducer)
      for (int i = 0; i < 7; ++i) b[pick_offset(rng, s, n)] = static_cast<char>(rng.below(256));
      return "bytes7";
    }
    case 2: {  // a run of random bytes
      const uint64_t o = pick_offset(rng, s, n), k = 1 + rng.below(8);
      for (uint64_t i = 0; i < k && o + i < n; ++i) b[o + i] = static_cast<char>(rng.below(256));
      return "run" + std::to_string(k);
    }
    case 3: {  // an interesting integer, little-endian
      static const uint64_t values[] = {0,          1,          2,          7,          8,
                                        0x7F,       0x80,       0xFF,       0x7FFF,     0x8000,
                                        0xFFFF,     1ull << 26, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                        1ull << 32, 1ull << 40, 1ull << 62, ~0ull >> 1, ~0ull};
      uint64_t v = rng.below(4) == 0 ? n + rng.below(64) - 32 : values[rng.below(sizeof values / sizeof values[0])];
      const int width = 1 << rng.below(4);
      const uint64_t o = pick_offset(rng, s, n);
      for (int i = 0; i < width && o + i < n; ++i) b[o + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
      return "int" + std::to_string(width * 8);
    }
    case 4: {  // truncation
      b.resize(rng.below(n));
      return "truncate";
    }
    case 5: {  // a block copied from elsewhere in the file
      const uint64_t from = rng.below(n), to = pick_offset(rng, s, n), k = 4 + rng.below(61);
      for (uint64_t i = 0; i < k && from + i < n && to + i < n; ++i) b[to + i] = b[from + i];
      return "splice";
    }
    default: {  // an 8-byte field set to all ones (undefined address / huge length)
      const uint64_t o = pick_offset(rng, s, n);
      for (uint64_t i = 0; i < 8 && o + i < n; ++i) b[o + i] = '\xFF';
      return "ones8";
    }
  }
}

std::string make_mutant(uint64_t campaign_seed, uint64_t index, const std::vector<Seed>& seeds, size_t& which,
                        std::string& how) {
  Rng rng{campaign_seed * 0x100000001B3ull ^ (index + 1) * 0x9E3779B97F4A7C15ull};
  rng.next();
  which = rng.below(seeds.size());
  const Seed& s = seeds[which];
  std::string b = s.bytes;
  const int k = rng.below(4) == 0 ? 2 + static_cast<int>(rng.below(3)) : 1;
  for (int i = 0; i < k; ++i) how += (i ? "+" : "") + mutate_once(rng, s, b);
  return b;
}

// [[noreturn]] child body: runs the exercise and exits with its verdict.
[[noreturn]] void child_main(const std::string& file, const std::string& scratch, const std::string& log,
                             int timeout_s, uint64_t mem_mb) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    ::close(fd);
  }
  ::signal(SIGALRM, on_alarm);
  ::alarm(static_cast<unsigned>(timeout_s));
#ifndef SEMCODEC_ASAN
  if (mem_mb > 0) {
    rlimit lim{mem_mb << 20, mem_mb << 20};
    ::setrlimit(RLIMIT_AS, &lim);
  }
#else
  (void)mem_mb;
#endif
  at::set_num_threads(1);
  const auto r = exercise_feature_file(file, scratch);
  if (r.unclean > 0) {
    std::fprintf(stderr, "UNCLEAN EXCEPTION: %s\n", r.unclean_what.c_str());
    std::fflush(stderr);
    ::_exit(kExitUnclean);
  }
  std::fflush(stdout);
  ::_exit(r.refused == 0 ? 0 : 1);
}

// A stable name for a finding: sanitizer summary + first frames, or the signal.
std::string signature(const std::string& log, const std::string& kind) {
  std::string sig;
  std::smatch m;
  if (std::regex_search(log, m, std::regex("SUMMARY: AddressSanitizer: ([a-zA-Z0-9_-]+)"))) sig = m[1].str();
  else if (std::regex_search(log, m, std::regex("runtime error: ([^\n]*)"))) sig = "ubsan: " + m[1].str().substr(0, 60);
  else if (std::regex_search(log, m, std::regex("UNCLEAN EXCEPTION: ([^\n]*)"))) {
    std::string w = m[1].str();
    sig = "exception: " + std::regex_replace(w.substr(0, 90), std::regex("[0-9]+"), "N");
  }
  std::string frames;
  int taken = 0;
  // "#3 0x... in H5HG_read (lib...)" or, for a stripped library, "#3 0x... (/lib/x/libhdf5.so.103+0x1233e4)".
  static const std::regex frame_re("#[0-9]+ 0x[0-9a-f]+ (?:in ([^ \n(]+)|\\(([^)+ ]*/)?([^/)+ ]+\\+0x[0-9a-f]+)\\))");
  auto begin = std::sregex_iterator(log.begin(), log.end(), frame_re);
  for (auto it = begin; it != std::sregex_iterator() && taken < 3; ++it) {
    const std::string f = (*it)[1].matched ? (*it)[1].str() : (*it)[3].str();
    if (f.rfind("__asan", 0) == 0 || f.rfind("__interceptor", 0) == 0 || f.rfind("__sanitizer", 0) == 0 ||
        f == "malloc" || f == "calloc" || f == "realloc" || f == "free" || f == "operator" || f.rfind("__memcpy", 0) == 0 ||
        f == "memcpy" || f == "memmove" || f == "strlen" || f == "posix_memalign")
      continue;
    frames += (frames.empty() ? "" : " < ") + f;
    ++taken;
  }
  if (sig.empty()) sig = kind;
  return frames.empty() ? sig : sig + " in " + frames;
}

struct Running {
  pid_t pid;
  uint64_t index;
  size_t seed;
  std::string how, file, log;
  std::chrono::steady_clock::time_point start;
};

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --out DIR [--mutants N] [--seed S] [--jobs J] [--timeout SEC] [--mem-mb MB] SEED.h5...\n"
               "       %s --replay FILE_OR_DIR...\n",
               argv0, argv0);
  return 2;
}

int replay(const std::vector<std::string>& inputs) {
  std::vector<fs::path> files;
  for (const auto& a : inputs) {
    if (fs::is_directory(a)) {
      for (const auto& e : fs::recursive_directory_iterator(a))
        if (e.is_regular_file() && e.path().extension() == ".h5") files.push_back(e.path());
    } else {
      files.push_back(a);
    }
  }
  std::sort(files.begin(), files.end());
  const std::string scratch = (fs::temp_directory_path() / ("h5_campaign_replay_" + std::to_string(::getpid()))).string();
  fs::create_directories(scratch);
  int unclean = 0, accepted = 0;
  for (const auto& f : files) {
    const auto r = exercise_feature_file(f.string(), scratch);
    if (r.unclean) {
      ++unclean;
      std::printf("%s: UNCLEAN %s\n", f.c_str(), r.unclean_what.c_str());
    }
    if (r.refused == 0 && r.unclean == 0) ++accepted;
  }
  fs::remove_all(scratch);
  std::printf("h5_campaign: replayed %zu files, %d accepted by every reader, %d with an unclean exception\n",
              files.size(), accepted, unclean);
  return unclean ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out;
  uint64_t mutants = 1000, seed = 1, mem_mb = 4096;
  int jobs = 2, timeout_s = 20;
  std::vector<std::string> inputs;
  bool replay_mode = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--out") out = value();
    else if (a == "--mutants") mutants = std::stoull(value());
    else if (a == "--seed") seed = std::stoull(value());
    else if (a == "--jobs") jobs = std::max(1, std::stoi(value()));
    else if (a == "--timeout") timeout_s = std::max(1, std::stoi(value()));
    else if (a == "--mem-mb") mem_mb = std::stoull(value());
    else if (a == "--replay") replay_mode = true;
    else if (!a.empty() && a[0] == '-') return usage(argv[0]);
    else inputs.push_back(a);
  }
  if (inputs.empty()) return usage(argv[0]);
  if (replay_mode) return replay(inputs);
  if (out.empty()) return usage(argv[0]);

  std::vector<std::string> seed_files;
  for (const auto& p : inputs) {
    if (fs::is_directory(p)) {
      std::vector<std::string> in_dir;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().extension() == ".h5") in_dir.push_back(e.path().string());
      std::sort(in_dir.begin(), in_dir.end());
      seed_files.insert(seed_files.end(), in_dir.begin(), in_dir.end());
    } else {
      seed_files.push_back(p);
    }
  }
  if (seed_files.empty()) {
    std::fprintf(stderr, "h5_campaign: no seed files\n");
    return 2;
  }
  std::vector<Seed> seeds;
  for (const auto& p : seed_files) seeds.push_back(load_seed(p));
  fs::create_directories(out + "/findings");
  for (int j = 0; j < jobs; ++j) fs::create_directories(out + "/work/" + std::to_string(j));

  std::map<std::string, std::string> kinds_order;
  std::map<std::string, uint64_t> counts;       // ok, refused, crash, hang, unclean, oom
  std::map<std::string, uint64_t> sig_count;    // signature -> mutants
  std::map<std::string, std::string> sig_first;  // signature -> first finding file
  std::vector<Running> running;
  std::vector<int> free_slots;
  for (int j = jobs - 1; j >= 0; --j) free_slots.push_back(j);
  std::map<pid_t, int> slot_of;
  uint64_t next = 0, done = 0;
  const auto t0 = std::chrono::steady_clock::now();

  auto finish = [&](const Running& r, int status) {
    std::string kind;
    if (WIFEXITED(status)) {
      const int code = WEXITSTATUS(status);
      if (code == 0) kind = "accepted";
      else if (code == 1) kind = "refused";
      else if (code == kExitUnclean) kind = "unclean";
      else if (code == kExitHang) kind = "hang";
      else if (code == 86) kind = "crash";
      else kind = "crash";
    } else if (WIFSIGNALED(status)) {
      kind = WTERMSIG(status) == SIGALRM || WTERMSIG(status) == SIGKILL ? "hang" : "crash";
    }
    const std::string log = read_bytes(r.log);
    if (kind == "crash" && (log.find("allocation-size-too-big") != std::string::npos ||
                            log.find("rss-limit-exceeded") != std::string::npos ||
                            log.find("out-of-memory") != std::string::npos || log.find("bad_alloc") != std::string::npos))
      kind = "memory";
    if (kind == "unclean" && log.find("bad_alloc") != std::string::npos) kind = "memory";
    // A crash inside probe_hdf5_file's child process, turned into an error there.
    if ((kind == "accepted" || kind == "refused") &&
        (log.find("ERROR: AddressSanitizer") != std::string::npos || log.find("runtime error:") != std::string::npos))
      kind = "contained";
    ++counts[kind];
    if (kind != "accepted" && kind != "refused") {
      std::string sig = signature(log, kind == "hang" ? "hang (timeout)" : kind == "contained" ? "signal in the probe" : WIFSIGNALED(status)
                                                                               ? "signal " + std::to_string(WTERMSIG(status))
                                                                               : kind);
      sig = kind + ": " + sig;
      const std::string base = out + "/findings/" + kind + "-" + std::to_string(r.index);
      fs::copy_file(r.file, base + ".h5", fs::copy_options::overwrite_existing);
      std::ofstream(base + ".log") << "seed " << seeds[r.seed].path << "\nmutation " << r.how << "\n\n" << log;
      if (sig_count[sig]++ == 0) {
        sig_first[sig] = base + ".h5";
        std::printf("NEW %s  (%s, mutant %llu of %s)\n", sig.c_str(), r.how.c_str(),
                    static_cast<unsigned long long>(r.index), seeds[r.seed].path.c_str());
        std::fflush(stdout);
      }
    }
    ++done;
    if (done % 500 == 0) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("... %llu mutants in %.0f s\n", static_cast<unsigned long long>(done), s);
      std::fflush(stdout);
    }
  };

  while (done < mutants) {
    while (next < mutants && !free_slots.empty()) {
      const int slot = free_slots.back();
      free_slots.pop_back();
      Running r;
      r.index = next++;
      const std::string bytes = make_mutant(seed, r.index, seeds, r.seed, r.how);
      const std::string dir = out + "/work/" + std::to_string(slot);
      r.file = dir + "/mutant.h5";
      r.log = dir + "/log.txt";
      write_bytes(r.file, bytes);
      std::fflush(stdout);
      const pid_t pid = ::fork();
      if (pid == 0) child_main(r.file, dir, r.log, timeout_s, mem_mb);
      if (pid < 0) {
        std::perror("fork");
        return 2;
      }
      r.pid = pid;
      r.start = std::chrono::steady_clock::now();
      slot_of[pid] = slot;
      running.push_back(r);
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      // Children that ignore their alarm (stuck in a system call) are killed.
      for (const auto& r : running)
        if (std::chrono::steady_clock::now() - r.start > std::chrono::seconds(timeout_s + 10)) ::kill(r.pid, SIGKILL);
      ::usleep(2000);
      continue;
    }
    auto it = std::find_if(running.begin(), running.end(), [&](const Running& r) { return r.pid == pid; });
    if (it == running.end()) continue;
    finish(*it, status);
    free_slots.push_back(slot_of[pid]);
    slot_of.erase(pid);
    running.erase(it);
  }
  fs::remove_all(out + "/work");

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\nh5_campaign: %llu mutants of %zu seed files in %.0f s (seed %llu)\n",
              static_cast<unsigned long long>(done), seeds.size(), secs, static_cast<unsigned long long>(seed));
  for (const char* k : {"accepted", "refused", "contained", "crash", "memory", "hang", "unclean"})
    std::printf("  %-9s %llu\n", k, static_cast<unsigned long long>(counts[k]));
  std::printf("distinct findings: %zu\n", sig_count.size());
  for (const auto& [sig, c] : sig_count)
    std::printf("  %6llu  %s  (e.g. %s)\n", static_cast<unsigned long long>(c), sig.c_str(), sig_first[sig].c_str());
  // Contained crashes (refused cleanly by the probe) are reported, not failures.
  for (const auto& [sig, c] : sig_count)
    if (sig.rfind("contained", 0) != 0) return 1;
  return 0;
}
