// JPEG and PNG decoding: every layout PIL distinguishes, checked against
// values computed by hand from what the reference encoders were given, and
// hostile files (empty, truncated, corrupt, decompression bombs, mutations).
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>

#include "data/image_decode.h"
#include "test_image_writers.h"
#include "test_support.h"
#include "util/error.h"

using namespace semcodec;
using semcodec::test::encode_jpeg;
using semcodec::test::encode_png;
using semcodec::test::TempDir;

namespace {

Image decode(const std::string& bytes) { return decode_image(bytes, "mem"); }

std::vector<uint8_t> flat(int w, int h, std::vector<uint8_t> value) {
  std::vector<uint8_t> px;
  for (int i = 0; i < w * h; ++i) px.insert(px.end(), value.begin(), value.end());
  return px;
}

void check_near_all(const Image& im, const std::vector<uint8_t>& value, int tol) {
  const size_t ch = value.size();
  REQUIRE(im.pixels.size() == static_cast<size_t>(im.width * im.height) * ch);
  for (size_t i = 0; i < im.pixels.size(); ++i) {
    INFO("sample " << i);
    REQUIRE(std::abs(int(im.pixels[i]) - int(value[i % ch])) <= tol);
  }
}

// A PNG whose IHDR claims width x height (CRC recomputed so libpng reads on).
std::string png_claiming(uint32_t width, uint32_t height) {
  std::string png = encode_png(2, 2, PNG_COLOR_TYPE_RGB, 8, std::vector<uint8_t>(12, 7));
  auto put32 = [&](size_t at, uint32_t v) {
    for (int b = 0; b < 4; ++b) png[at + b] = static_cast<char>((v >> (24 - 8 * b)) & 0xFF);
  };
  put32(16, width);
  put32(20, height);
  put32(29, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17)));
  return png;
}

// A JPEG whose SOF claims width x height.
std::string jpeg_claiming(uint16_t width, uint16_t height, bool progressive = false) {
  std::string jpg = encode_jpeg(16, 16, 3, JCS_RGB, test::rgb_pattern(16, 16), 90, JCS_UNKNOWN, progressive);
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    const unsigned char m = static_cast<unsigned char>(jpg[i + 1]);
    if (static_cast<unsigned char>(jpg[i]) == 0xFF && (m == 0xC0 || m == 0xC2)) {
      jpg[i + 5] = static_cast<char>(height >> 8);
      jpg[i + 6] = static_cast<char>(height & 0xFF);
      jpg[i + 7] = static_cast<char>(width >> 8);
      jpg[i + 8] = static_cast<char>(width & 0xFF);
      return jpg;
    }
  }
  FAIL("no SOF marker");
  return {};
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("PNG layouts decode to PIL's modes and values", "[image]") {
  SECTION("8-bit gray") {
    Image im = decode(encode_png(2, 2, PNG_COLOR_TYPE_GRAY, 8, {0, 100, 200, 255}));
    CHECK(im.mode == PixelMode::L);
    CHECK(im.pixels == std::vector<uint8_t>{0, 100, 200, 255});
    CHECK(to_rgb(im).pixels == std::vector<uint8_t>{0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255});
  }
  SECTION("1-, 2- and 4-bit gray scale to 8 bits") {
    Image b1 = decode(encode_png(4, 1, PNG_COLOR_TYPE_GRAY, 1, {0xB0}));  // 1011
    CHECK(b1.mode == PixelMode::Bilevel);
    CHECK(b1.pixels == std::vector<uint8_t>{255, 0, 255, 255});
    Image b2 = decode(encode_png(4, 1, PNG_COLOR_TYPE_GRAY, 2, {0x1B}));  // 0 1 2 3
    CHECK(b2.mode == PixelMode::L);
    CHECK(b2.pixels == std::vector<uint8_t>{0, 85, 170, 255});
    Image b4 = decode(encode_png(4, 1, PNG_COLOR_TYPE_GRAY, 4, {0x0F, 0x38}));  // 0 15 3 8
    CHECK(b4.pixels == std::vector<uint8_t>{0, 255, 51, 136});
  }
  SECTION("16-bit gray keeps its range (mode I) and convert clips it") {
    Image im = decode(encode_png(4, 1, PNG_COLOR_TYPE_GRAY, 16, {0x00, 0x00, 0x00, 0xC8, 0x01, 0x2C, 0xFF, 0xFF}));
    CHECK(im.mode == PixelMode::I);
    CHECK(im.values == std::vector<int32_t>{0, 200, 300, 65535});
    CHECK(to_rgb(im).pixels == std::vector<uint8_t>{0, 0, 0, 200, 200, 200, 255, 255, 255, 255, 255, 255});
  }
  SECTION("gray with a tRNS color stays L") {
    Image im = decode(encode_png(2, 1, PNG_COLOR_TYPE_GRAY, 8, {5, 9}, {}, {9}));
    CHECK(im.mode == PixelMode::L);
    CHECK(im.pixels == std::vector<uint8_t>{5, 9});
  }
  SECTION("gray + alpha, 8 and 16 bit") {
    Image im = decode(encode_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {10, 20, 30, 40}));
    CHECK(im.mode == PixelMode::LA);
    CHECK(im.pixels == std::vector<uint8_t>{10, 20, 30, 40});
    CHECK(to_rgb(im).pixels == std::vector<uint8_t>{10, 10, 10, 30, 30, 30});
    Image im16 = decode(encode_png(1, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 16, {0x12, 0xAB, 0x80, 0xFF}));
    CHECK(im16.mode == PixelMode::LA);
    CHECK(im16.pixels == std::vector<uint8_t>{0x12, 0x80});
  }
  SECTION("palette with tRNS: indices and palette kept, alpha ignored by convert") {
    std::vector<png_color> pal{{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    Image im = decode(encode_png(3, 1, PNG_COLOR_TYPE_PALETTE, 8, {2, 0, 1}, pal, {0, 128}));
    CHECK(im.mode == PixelMode::P);
    CHECK(im.pixels == std::vector<uint8_t>{2, 0, 1});
    CHECK(to_rgb(im).pixels == std::vector<uint8_t>{0, 0, 255, 255, 0, 0, 0, 255, 0});
    Image im4 = decode(encode_png(3, 1, PNG_COLOR_TYPE_PALETTE, 4, {0x21, 0x00}, pal));
    CHECK(im4.pixels == std::vector<uint8_t>{2, 1, 0});
  }
  SECTION("RGB and RGBA, 8 and 16 bit (16-bit keeps the high byte)") {
    Image rgb = decode(encode_png(1, 1, PNG_COLOR_TYPE_RGB, 8, {1, 2, 3}));
    CHECK((rgb.mode == PixelMode::RGB && rgb.pixels == std::vector<uint8_t>{1, 2, 3}));
    Image rgba = decode(encode_png(1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, {1, 2, 3, 4}));
    CHECK((rgba.mode == PixelMode::RGBA && rgba.pixels == std::vector<uint8_t>{1, 2, 3, 4}));
    CHECK(to_rgb(rgba).pixels == std::vector<uint8_t>{1, 2, 3});
    Image rgb16 = decode(encode_png(1, 1, PNG_COLOR_TYPE_RGB, 16, {0x12, 0xAB, 0xFF, 0x00, 0x80, 0xFF}));
    CHECK((rgb16.mode == PixelMode::RGB && rgb16.pixels == std::vector<uint8_t>{0x12, 0xFF, 0x80}));
    Image rgba16 = decode(encode_png(1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, {1, 255, 2, 255, 3, 255, 4, 255}));
    CHECK((rgba16.mode == PixelMode::RGBA && rgba16.pixels == std::vector<uint8_t>{1, 2, 3, 4}));
  }
  SECTION("interlaced equals progressive-free") {
    auto px = test::rgb_pattern(13, 11);
    Image a = decode(encode_png(13, 11, PNG_COLOR_TYPE_RGB, 8, px, {}, {}, false));
    Image b = decode(encode_png(13, 11, PNG_COLOR_TYPE_RGB, 8, px, {}, {}, true));
    CHECK(a.pixels == px);
    CHECK(b.pixels == px);
  }
}

TEST_CASE("JPEG layouts decode to PIL's modes", "[image]") {
  SECTION("grayscale -> L") {
    Image im = decode(encode_jpeg(16, 16, 1, JCS_GRAYSCALE, flat(16, 16, {100}), 100));
    CHECK(im.mode == PixelMode::L);
    check_near_all(im, {100}, 1);
  }
  SECTION("YCbCr -> RGB") {
    Image im = decode(encode_jpeg(16, 16, 3, JCS_RGB, flat(16, 16, {200, 50, 25}), 100));
    CHECK(im.mode == PixelMode::RGB);
    check_near_all(im, {200, 50, 25}, 2);
  }
  SECTION("progressive decodes to the same pixels as baseline") {
    auto px = test::rgb_pattern(40, 24);
    Image a = decode(encode_jpeg(40, 24, 3, JCS_RGB, px, 90));
    Image b = decode(encode_jpeg(40, 24, 3, JCS_RGB, px, 90, JCS_UNKNOWN, true));
    CHECK(a.pixels == b.pixels);
  }
  SECTION("Adobe CMYK and YCCK -> CMYK (inverted) -> RGB as PIL converts") {
    // Ink (C, M, Y, K) = (51, 102, 0, 64), stored inverted as Adobe writes it.
    // PIL: nk = 255 - 64 = 191; R = 191 - round(51*191/255) = 153,
    // G = 191 - round(102*191/255) = 115, B = 191.
    for (J_COLOR_SPACE space : {JCS_CMYK, JCS_YCCK}) {
      Image im = decode(encode_jpeg(16, 16, 4, JCS_CMYK, flat(16, 16, {204, 153, 255, 191}), 100, space));
      CHECK(im.mode == PixelMode::CMYK);
      check_near_all(im, {51, 102, 0, 64}, 2);
      check_near_all(to_rgb(im), {153, 115, 191}, 3);
    }
  }
}

TEST_CASE("CMYK to RGB follows PIL's integer formula exactly", "[image]") {
  Image im;
  im.mode = PixelMode::CMYK;
  im.width = 3;
  im.height = 1;
  im.pixels = {0, 0, 0, 0, 255, 255, 255, 255, 51, 102, 0, 64};
  CHECK(to_rgb(im).pixels == std::vector<uint8_t>{255, 255, 255, 0, 0, 0, 153, 115, 191});
}

TEST_CASE("unreadable images fail with the file name and the problem", "[image][safety]") {
  TempDir dir("imgsafe");
  auto jpg = encode_jpeg(64, 48, 3, JCS_RGB, test::rgb_pattern(64, 48), 90);
  auto png = encode_png(64, 48, PNG_COLOR_TYPE_RGB, 8, test::rgb_pattern(64, 48));
  struct Case {
    std::string file, bytes, expect;
  };
  std::vector<Case> cases{
      {"empty.jpg", "", "empty file"},
      {"trunc_header.jpg", jpg.substr(0, 40), "JPEG"},
      {"trunc_scan.jpg", jpg.substr(0, jpg.size() / 2), "truncated"},
      {"trunc.png", png.substr(0, png.size() / 2), "PNG"},
      {"trunc_sig.png", png.substr(0, 12), "PNG"},
      {"garbage.jpg", std::string("\xFF\xD8\xFF") + std::string(200, '\x55'), "corrupt JPEG"},
      {"garbage.png", png.substr(0, 8) + std::string(100, '\x01'), "corrupt PNG"},
      {"gif.jpg", "GIF89a\x01\x00\x01\x00", "not a JPEG or PNG"},
      {"huge.png", png_claiming(100000, 100000), "100000x100000"},
      {"huge.jpg", jpeg_claiming(65000, 65000), "65000x65000"},
      {"huge_progressive.jpg", jpeg_claiming(65000, 65000, true), "above the limit"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.file(c.file);
    test::write_bytes(path, c.bytes);
    const std::string msg = error_of([&] { read_image(path); });
    INFO(c.file << ": " << msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(c.expect) != std::string::npos);
  }
  CHECK(error_of([&] { read_image(dir.file("missing.jpg")); }).find("cannot open") != std::string::npos);
  // A configurable pixel limit, checked from the header.
  DecodeLimits small;
  small.max_pixels = 1000;
  CHECK(error_of([&] { decode_image(jpg, "x.jpg", small); }).find("above the limit of 1000") != std::string::npos);
  CHECK(error_of([&] { decode_image(png, "x.png", small); }).find("above the limit of 1000") != std::string::npos);
  DecodeLimits tiny_file;
  tiny_file.max_file_bytes = 10;
  test::write_bytes(dir.file("ok.png"), png);
  CHECK(error_of([&] { read_image(dir.file("ok.png"), tiny_file); }).find("bytes, above the limit") != std::string::npos);
}

TEST_CASE("mutated files decode or fail cleanly, never crash", "[image][safety]") {
  std::mt19937 rng(1234);
  const std::vector<std::string> seeds{
      encode_jpeg(24, 20, 3, JCS_RGB, test::rgb_pattern(24, 20), 80),
      encode_jpeg(24, 20, 3, JCS_RGB, test::rgb_pattern(24, 20), 80, JCS_UNKNOWN, true),
      encode_jpeg(8, 8, 4, JCS_CMYK, flat(8, 8, {1, 2, 3, 4}), 80, JCS_YCCK),
      encode_png(24, 20, PNG_COLOR_TYPE_RGB, 8, test::rgb_pattern(24, 20)),
      encode_png(24, 20, PNG_COLOR_TYPE_RGB, 8, test::rgb_pattern(24, 20), {}, {}, true),
      encode_png(3, 1, PNG_COLOR_TYPE_PALETTE, 8, {2, 0, 1}, {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}),
  };
  int ok = 0, failed = 0;
  for (int iter = 0; iter < 600; ++iter) {
    std::string b = seeds[iter % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = 2 + rng() % (b.size() - 2);  // keep the signature mostly intact
      switch (rng() % 3) {
        case 0: b[at] = static_cast<char>(rng()); break;
        case 1: b.resize(at); break;
        default: b.insert(at, 1 + rng() % 8, static_cast<char>(rng()));
      }
      if (b.size() < 4) break;
    }
    try {
      Image im = decode_image(b, "mutant");
      REQUIRE(im.width > 0);
      REQUIRE(im.height > 0);
      REQUIRE(im.pixels.size() + im.values.size() >= static_cast<size_t>(im.width * im.height));
      ++ok;
    } catch (const Error&) {
      ++failed;
    }
  }
  CHECK(ok + failed == 600);
  CHECK(failed > 0);
}
