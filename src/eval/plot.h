// Figures as PNG through gnuplot: the data (.dat) and the script (.gp) are
// always written beside the PNG so a figure can be restyled or redrawn
// without rerunning anything; the PNG needs `gnuplot` in PATH.
#pragma once
#include <string>

#include "eval/report.h"

namespace semcodec {

struct PlotFiles {
  std::string data, script, png;
  bool rendered = false;
  std::string message;  // why there is no PNG
};

// gnuplot script for `f` reading `data_file` and writing `png_file` (pngcairo, 900x600).
std::string gnuplot_script(const Figure& f, const std::string& data_file, const std::string& png_file);
// One block per series ("# <name>" then "x y" lines), blocks separated by two blank lines.
std::string gnuplot_data(const Figure& f);
// Writes <dir>/<name>.dat and .gp, then runs gnuplot for <dir>/<name>.png (atomically: temp name + rename).
PlotFiles write_figure(const Figure& f, const std::string& dir);

}  // namespace semcodec
