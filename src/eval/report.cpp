#include "eval/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "util/atomic_file.h"
#include "util/error.h"

namespace semcodec {

namespace {

// Groups keep first-appearance order, so tables follow the sweep file.
template <class T>
void add_once(std::vector<T>& order, const T& v) {
  if (std::find(order.begin(), order.end(), v) == order.end()) order.push_back(v);
}

// Column key of a configured rate: bpd rounded to 1e-3 (400/768 and 0.52 meet).
int64_t bpd_key(double bpd) { return static_cast<int64_t>(std::llround(bpd * 1000.0)); }

struct Mean {
  double sum = 0;
  int64_t n = 0;
  void add(double v) { sum += v, ++n; }
  double value() const { return n ? sum / static_cast<double>(n) : 0; }
};

std::vector<ResultRow> ok_rows(const std::vector<ResultRow>& rows) {
  std::vector<ResultRow> out;
  for (const auto& r : rows)
    if (r.status == "ok") out.push_back(r);
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string number(double v) { return fmt::format("{:.6g}", v); }

// Table 1 cells: dataset -> label -> bpd column -> mean top-1, and the upper bounds.
struct Table1 {
  std::vector<std::string> datasets;
  std::map<std::string, std::vector<std::string>> labels;
  std::map<std::string, Mean> upper;
  std::map<std::string, std::map<std::string, std::map<int64_t, Mean>>> cells;
  std::vector<int64_t> columns;
};

Table1 table1(const std::vector<ResultRow>& all) {
  Table1 t;
  std::set<int64_t> cols;
  for (const ResultRow& r : ok_rows(all)) {
    add_once(t.datasets, r.dataset);
    add_once(t.labels[r.dataset], r.label);
    t.upper[r.dataset].add(100.0 * r.clean_top1);
    const int64_t c = bpd_key(r.raw_bpd());
    cols.insert(c);
    t.cells[r.dataset][r.label][c].add(100.0 * r.top1);
  }
  t.columns.assign(cols.begin(), cols.end());
  return t;
}

std::string cell_text(const Table1& t, const std::string& d, const std::string& l, int64_t c) {
  auto& byl = t.cells.at(d).at(l);
  auto it = byl.find(c);
  return it == byl.end() ? std::string("-") : fmt::format("{:.2f}", it->second.value());
}

}  // namespace

nlohmann::json result_to_json(const ResultRow& r) {
  return {{"key", r.key},
          {"dataset", r.dataset},
          {"label", r.label},
          {"method", r.method},
          {"status", r.status},
          {"error", r.error},
          {"rate_source", r.rate_source},
          {"classifier", r.classifier},
          {"seed", r.seed},
          {"embed_dim", r.embed_dim},
          {"raw_bits", r.raw_bits},
          {"bits_per_item", r.bits_per_item},
          {"bpd", r.bpd()},
          {"raw_bpd", r.raw_bpd()},
          {"bpp", r.bpp < 0 ? nlohmann::json(nullptr) : nlohmann::json(r.bpp)},
          {"top1", r.top1},
          {"top5", r.top5},
          {"clean_top1", r.clean_top1},
          {"mean_cosine", r.mean_cosine},
          {"train_seconds", r.train_seconds},
          {"eval_seconds", r.eval_seconds},
          {"settings", r.settings}};
}

ResultRow result_from_json(const nlohmann::json& j, const std::string& source) {
  require(j.is_object(), "{}: a result row is not a JSON object", source);
  ResultRow r;
  try {
    r.key = j.at("key").get<std::string>();
    r.dataset = j.at("dataset").get<std::string>();
    r.label = j.at("label").get<std::string>();
    r.method = j.value("method", std::string());
    r.status = j.at("status").get<std::string>();
    r.error = j.value("error", std::string());
    r.rate_source = j.value("rate_source", std::string());
    r.classifier = j.value("classifier", std::string());
    r.seed = j.value("seed", int64_t{0});
    r.embed_dim = j.value("embed_dim", int64_t{0});
    r.raw_bits = j.value("raw_bits", 0.0);
    r.bits_per_item = j.value("bits_per_item", 0.0);
    r.bpp = j.contains("bpp") && j["bpp"].is_number() ? j["bpp"].get<double>() : -1.0;
    r.top1 = j.value("top1", 0.0);
    r.top5 = j.value("top5", 0.0);
    r.clean_top1 = j.value("clean_top1", 0.0);
    r.mean_cosine = j.value("mean_cosine", 0.0);
    r.train_seconds = j.value("train_seconds", 0.0);
    r.eval_seconds = j.value("eval_seconds", 0.0);
    r.settings = j.value("settings", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed result row: {}", source, e.what());
  }
  require(r.status == "ok" || r.status == "failed", "{}: result '{}' has status '{}' (ok or failed)", source, r.key,
          r.status);
  return r;
}

std::vector<ResultRow> read_results(const std::string& path) {
  const std::string text = read_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  require(j.is_array(), "{}: expected a JSON array of result rows", path);
  std::vector<ResultRow> rows;
  for (size_t i = 0; i < j.size(); ++i) rows.push_back(result_from_json(j[i], fmt::format("{} row {}", path, i)));
  return rows;
}

std::string results_json(const std::vector<ResultRow>& rows) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : rows) j.push_back(result_to_json(r));
  return j.dump(2) + "\n";
}

std::string results_csv(const std::vector<ResultRow>& rows) {
  std::string out =
      "key,dataset,label,method,seed,status,raw_bits,bits_per_item,raw_bpd,bpd,bpp,top1,top5,clean_top1,"
      "mean_cosine,rate_source,train_seconds,eval_seconds,settings,error\n";
  for (const ResultRow& r : rows)
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_field(r.key),
                       csv_field(r.dataset), csv_field(r.label), csv_field(r.method), r.seed, r.status,
                       number(r.raw_bits), number(r.bits_per_item), number(r.raw_bpd()), number(r.bpd()),
                       r.bpp < 0 ? std::string() : number(r.bpp), number(r.top1), number(r.top5),
                       number(r.clean_top1), number(r.mean_cosine), csv_field(r.rate_source),
                       number(r.train_seconds), number(r.eval_seconds), csv_field(r.settings.dump()),
                       csv_field(r.error));
  return out;
}

std::string bpd_heading(double bpd) {
  std::string s = fmt::format("{:.2f}", bpd);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string table1_markdown(const std::vector<ResultRow>& rows) {
  const Table1 t = table1(rows);
  std::string out = "| Dataset | method / bpd |";
  std::string rule = "|---|---|";
  for (int64_t c : t.columns) out += " " + bpd_heading(static_cast<double>(c) / 1000.0) + " |", rule += "---:|";
  out += "\n" + rule + "\n";
  for (const std::string& d : t.datasets) {
    bool first = true;
    for (const std::string& l : t.labels.at(d)) {
      out += "| " + (first ? fmt::format("{} (UB: {:.2f})", d, t.upper.at(d).value()) : std::string()) + " | " + l +
             " |";
      for (int64_t c : t.columns) out += " " + cell_text(t, d, l, c) + " |";
      out += "\n";
      first = false;
    }
  }
  return out;
}

std::string table1_csv(const std::vector<ResultRow>& rows) {
  const Table1 t = table1(rows);
  std::string out = "dataset,upper_bound,method";
  for (int64_t c : t.columns) out += "," + bpd_heading(static_cast<double>(c) / 1000.0);
  out += "\n";
  for (const std::string& d : t.datasets)
    for (const std::string& l : t.labels.at(d)) {
      out += fmt::format("{},{:.2f},{}", csv_field(d), t.upper.at(d).value(), csv_field(l));
      for (int64_t c : t.columns) out += "," + cell_text(t, d, l, c);
      out += "\n";
    }
  return out;
}

Figure accuracy_figure(const std::vector<ResultRow>& all, const std::string& name, const std::string& title,
                       const std::string& x, const std::string& dataset) {
  require(x == "bpd" || x == "bpp" || x == "bits", "figure '{}': x must be bpd, bpp or bits, got '{}'", name, x);
  const std::vector<ResultRow> rows = ok_rows(all);
  Figure f;
  f.name = name;
  f.title = title;
  const bool ncm = !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const ResultRow& r) {
    return r.classifier == "ncm";
  });
  f.ylabel = ncm ? "top-1 accuracy, nearest class mean (%)" : "zero-shot top-1 accuracy (%)";
  // Rates are the coded payload (the raw rate for methods without an entropy coder).
  f.xlabel = x == "bpd" ? "rate (bits per dimension, as coded)"
             : x == "bpp" ? "rate (bits per pixel, as coded)"
                          : "rate (bits per image, as coded)";
  std::string ds = dataset;
  if (ds.empty() && !rows.empty()) ds = rows.front().dataset;
  std::vector<std::string> labels;
  // label -> configuration (raw rate and varied settings; seeds average
  // together) -> (mean x, mean top-1). The settings keep apart the points of a
  // rate-controlled method, whose fixed-length rate is the same at every target.
  std::map<std::string, std::map<std::pair<int64_t, std::string>, std::pair<Mean, Mean>>> pts;
  Mean upper;
  for (const ResultRow& r : rows) {
    if (r.dataset != ds) continue;
    upper.add(100.0 * r.clean_top1);
    if (x == "bpp" && r.bpp < 0) continue;
    add_once(labels, r.label);
    const double xv = x == "bpd" ? r.bpd() : x == "bpp" ? r.bpp : r.bits_per_item;
    auto& p = pts[r.label][{static_cast<int64_t>(std::llround(r.raw_bits * 1000.0)), r.settings.dump()}];
    p.first.add(xv);
    p.second.add(100.0 * r.top1);
  }
  for (const std::string& l : labels) {
    Series s;
    s.name = l;
    for (const auto& [rate, p] : pts[l]) s.points.emplace_back(p.first.value(), p.second.value());
    std::sort(s.points.begin(), s.points.end());
    f.series.push_back(std::move(s));
  }
  if (upper.n) f.upper_bounds.emplace_back(fmt::format("{} upper bound (uncompressed)", ds), upper.value());
  return f;
}

}  // namespace semcodec
