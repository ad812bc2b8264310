#include "eval/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "util/atomic_file.h"
#include "util/subprocess.h"

namespace semcodec {

namespace {
// gnuplot strings are single-quoted: a quote is doubled.
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}
}  // namespace

std::string gnuplot_data(const Figure& f) {
  std::string out = fmt::format("# {}: x = {}, y = {}\n", f.name, f.xlabel, f.ylabel);
  for (size_t i = 0; i < f.series.size(); ++i) {
    if (i) out += "\n\n";
    out += "# " + f.series[i].name + "\n";
    for (const auto& [x, y] : f.series[i].points) out += fmt::format("{:.6g} {:.6g}\n", x, y);
  }
  return out;
}

std::string gnuplot_script(const Figure& f, const std::string& data_file, const std::string& png_file) {
  std::string s;
  // The legend sits right of the axes, so it never hides a point.
  s += "set terminal pngcairo size 1150,600 enhanced font 'sans,11'\n";
  s += "set output " + quoted(png_file) + "\n";
  s += "set title " + quoted(f.title) + " noenhanced\n";
  s += "set xlabel " + quoted(f.xlabel) + " noenhanced\n";
  s += "set ylabel " + quoted(f.ylabel) + " noenhanced\n";
  s += "set grid\nset key outside right top box noenhanced\n";
  // The y axis spans the data (and upper bounds) with some room, on multiples of 5 within
  // [0, 100], so that methods a point apart stay apart.
  double lo = 100, hi = 0;
  for (const auto& series : f.series)
    for (const auto& [x, y] : series.points) lo = std::min(lo, y), hi = std::max(hi, y);
  for (const auto& [label, y] : f.upper_bounds) lo = std::min(lo, y), hi = std::max(hi, y);
  if (lo > hi) lo = 0, hi = 100;
  const double pad = std::max(2.0, 0.2 * (hi - lo));
  const double y0 = std::max(0.0, std::floor((lo - pad) / 5) * 5), y1 = std::min(100.0, std::ceil((hi + pad) / 5) * 5);
  s += fmt::format("set yrange [{:g}:{:g}]\nset offsets graph 0.03, graph 0.03, 0, 0\n", y0, y1);
  std::string plot;
  for (size_t i = 0; i < f.series.size(); ++i) {
    if (f.series[i].points.empty()) continue;
    if (!plot.empty()) plot += ", \\\n     ";
    plot += fmt::format("{} index {} using 1:2 with linespoints lw 2 pt {} title {}", quoted(data_file), i, 5 + i,
                        quoted(f.series[i].name));
  }
  for (const auto& [label, y] : f.upper_bounds) {
    if (!plot.empty()) plot += ", \\\n     ";
    plot += fmt::format("{:.6g} with lines dt 2 lw 2 lc rgb 'black' title {}", y,
                        quoted(fmt::format("{} {:.2f}%", label, y)));
  }
  if (plot.empty()) plot = "NaN notitle";
  s += "plot " + plot + "\n";
  return s;
}

PlotFiles write_figure(const Figure& f, const std::string& dir) {
  ensure_dir(dir);
  PlotFiles p;
  p.data = dir + "/" + f.name + ".dat";
  p.script = dir + "/" + f.name + ".gp";
  p.png = dir + "/" + f.name + ".png";
  const std::string tmp_png = p.png + ".tmp";
  write_file_atomic(p.data, gnuplot_data(f));
  // The script names the final paths; the temp name is only used for this run.
  write_file_atomic(p.script, gnuplot_script(f, p.data, p.png));
  const std::string gnuplot = find_executable("gnuplot");
  if (gnuplot.empty()) {
    p.message = "gnuplot is not installed (apt-get install gnuplot-nox); run `gnuplot " + p.script + "` later";
    return p;
  }
  const std::string run_script = p.script + ".run";
  write_file_atomic(run_script, gnuplot_script(f, p.data, tmp_png));
  const std::string log = dir + "/" + f.name + ".gnuplot.log";
  std::remove(log.c_str());
  const int rc = wait_process(spawn_process({gnuplot, run_script}, log));
  std::remove(run_script.c_str());
  std::error_code ec;
  if (rc != 0 || !std::filesystem::exists(tmp_png, ec) || std::filesystem::file_size(tmp_png, ec) == 0) {
    std::remove(tmp_png.c_str());
    p.message = fmt::format("gnuplot failed (exit {}), see {}", rc, log);
    return p;
  }
  std::filesystem::rename(tmp_png, p.png, ec);
  if (ec) {
    p.message = fmt::format("cannot rename {} to {}: {}", tmp_png, p.png, ec.message());
    return p;
  }
  std::remove(log.c_str());
  p.rendered = true;
  return p;
}

}  // namespace semcodec
