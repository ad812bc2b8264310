// semcodec.Codec: a checkpoint's codec (codec/checkpoint_codec.h) from Python.
// Every call that computes (loading, encoding, decoding) releases the GIL.
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <algorithm>
#include <filesystem>

#include <memory>
#include <set>

#include "bindings.h"
#include "codec/checkpoint_codec.h"
#include "data/device.h"
#include "models/method_registry.h"
#include "models/quantizers/stream_adaptive.h"
#include "numpy_tensor.h"
#include "util/json_bounded.h"
#include "util/config.h"

namespace semcodec::python {

namespace {

// Every key the visitor of `fields` writes, with its value (no defaults: keys at
// their default are kept, unlike the checkpoint's canonical JSON).
template <class Fields>
nlohmann::json all_keys(Fields& fields) {
  nlohmann::json out = nlohmann::json::object();
  config_detail::JsonWriter writer(out);
  fields.visit(writer);
  return out;
}

class PyCodec {
 public:
  // A path of str or os.PathLike (pathlib), as Python's own file functions take.
  static std::shared_ptr<PyCodec> load(const std::filesystem::path& file, const std::string& device) {
    const std::string path = file.string();
    auto self = std::make_shared<PyCodec>();
    {
      py::gil_scoped_release release;
      configure_threads_once();
      // Checked for every method, though fitted ones run on the CPU whatever it says: a typo is an error.
      resolve_device(device);
      Checkpoint ckpt = load_checkpoint(path);
      self->codec_ = make_codec(ckpt, path, device);
      self->path_ = path;
      self->device_ = device;
      // Every key, keys added later at their default included (to_json, the canonical form, leaves those out).
      self->config_ = all_keys(ckpt.config);
      self->model_ = ckpt.config.model;
      self->train_classes_ = ckpt.train_classes;
      self->heldout_classes_ = ckpt.heldout_classes;
      auto it = ckpt.extra_metadata.find("entropy");
      if (it != ckpt.extra_metadata.end()) self->entropy_ = parse_json_bounded(it->second, path + ": metadata 'entropy'");
    }
    return self;
  }

  Quantizer& quantizer() const { return codec_->quantizer(); }
  int64_t dim() const { return quantizer().embed_dim(); }
  int64_t slots() const { return codec_->slots(); }

  py::bytes encode(py::handle x) const {
    auto a = float_array(x, 2, dim(), "Codec.encode(x)");
    std::vector<uint8_t> bytes;
    {
      py::gil_scoped_release release;
      at::NoGradGuard no_grad;
      bytes = codec_->encode(view_tensor(a));
    }
    return to_bytes(bytes);
  }

  py::array decode(py::handle stream) const {
    ByteView b = byte_view(stream, "Codec.decode(stream)");
    CodecDecoded d;
    {
      py::gil_scoped_release release;
      at::NoGradGuard no_grad;
      d = codec_->decode(b.data(), b.size());
    }
    return to_numpy(d.features);
  }

  py::array decode_indices(py::handle stream) const {
    ByteView b = byte_view(stream, "Codec.decode_indices(stream)");
    at::Tensor idx;
    {
      py::gil_scoped_release release;
      DecodedStream ds = codec_->decode_indices(b.data(), b.size());
      // An adaptive stream's slot count is its own (its side information's), not the fixed context's.
      idx = indices_to_tensor(ds.indices, ds.header.items, ds.header.slots);
    }
    return to_numpy(idx);
  }


  bool adaptive() const { return dynamic_cast<StreamAdaptive*>(&quantizer()) != nullptr; }

  py::array indices(py::handle x) const {
    auto a = float_array(x, 2, dim(), "Codec.indices(x)");
    at::Tensor idx;
    {
      py::gil_scoped_release release;
      at::NoGradGuard no_grad;
      idx = codec_->stream_rows(view_tensor(a), false).indices;
    }
    return to_numpy(idx);
  }

  py::array reconstruct(py::handle x) const {
    auto a = float_array(x, 2, dim(), "Codec.reconstruct(x)");
    at::Tensor out;
    {
      py::gil_scoped_release release;
      at::NoGradGuard no_grad;
      out = codec_->stream_rows(view_tensor(a), true).reconstruction;
    }
    return to_numpy(out);
  }

  py::array dequantize(py::handle indices) const {
    auto a = index_array(indices, slots(), "Codec.dequantize(indices)");
    at::Tensor x;
    check_index_range(a);
    {
      py::gil_scoped_release release;
      at::NoGradGuard no_grad;
      x = codec_->reconstruct(view_tensor(a));
    }
    return to_numpy(x);
  }

  py::bytes encode_packet(py::handle x) const {
    py::array in = py::array::ensure(x);
    const bool row = in && in.ndim() == 2;
    auto a = float_array(x, row ? 2 : 1, dim(), "Codec.encode_packet(x)");
    if (row && a.shape(0) != 1)
      throw py::value_error(fmt::format("Codec.encode_packet(x): a packet holds one embedding, [{}] or [1, {}]; got "
                                        "{} rows (use encode for several)", dim(), dim(), a.shape(0)));
    std::vector<uint8_t> bytes;
    {
      py::gil_scoped_release release;
      at::NoGradGuard no_grad;
      bytes = codec_->encode_packet(view_tensor(a));
    }
    return to_bytes(bytes);
  }

  py::array decode_packet(py::handle packet) const {
    ByteView b = byte_view(packet, "Codec.decode_packet(packet)");
    CodecDecoded d;
    {
      py::gil_scoped_release release;
      at::NoGradGuard no_grad;
      d = codec_->decode_packet(b.data(), b.size());
    }
    return to_numpy(d.features.select(0, 0));
  }

  // Where the stream's bytes go, after checking it decodes with this codec.
  py::dict rate(py::handle stream) const {
    ByteView b = byte_view(stream, "Codec.rate(stream)");
    StreamRate r;
    {
      py::gil_scoped_release release;
      r = stream_rate(codec_->decode_indices(b.data(), b.size()), b.size());
    }
    py::dict out;
    out["coder"] = std::string(coder_name(r.coder));  // the stream's: the checkpoint's, or raw where that is shorter
    out["items"] = r.items;
    out["slots"] = r.slots;
    out["total_bytes"] = r.total_bytes;
    out["header_bytes"] = r.header_bytes;
    out["framing_bytes"] = r.framing_bytes;
    out["payload_bytes"] = r.payload_bytes;
    out["payload_bits_per_item"] = r.payload_bits_per_item();
    out["total_bits_per_item"] = r.total_bits_per_item();
    return out;
  }

  double bits_per_item(py::handle data) const {
    if (py::isinstance<py::bytes>(data) || py::isinstance<py::bytearray>(data) || py::isinstance<py::memoryview>(data))
      return rate(data)["payload_bits_per_item"].cast<double>();
    return rate(encode(data))["payload_bits_per_item"].cast<double>();
  }

  std::vector<int64_t> alphabet_sizes() const {
    std::vector<int64_t> k;
    for (int64_t s = 0; s < slots(); ++s) k.push_back(quantizer().alphabet_size(s));
    return k;
  }

  // The method's own settings: its name and kind, embed_dim, the network keys
  // for the PQ-VAEs, and the method's own option keys, with the checkpoint's values.
  py::dict settings() const {
    ModelConfig model = model_;
    const nlohmann::json values = all_keys(model);
    const MethodInfo& info = method_info(model.method);
    nlohmann::json own = nlohmann::json::object();
    if (info.options) {
      std::unique_ptr<OptionGroup> group = info.options();
      own = all_keys(*group);
    }
    OptionGroups every_method = registered_method_options();
    const nlohmann::json method_keys = all_keys(every_method);
    py::dict out;
    out["kind"] = method_kind_name(info.kind);
    for (const auto& [key, value] : values.items()) {
      const bool shared = key == "method" || key == "embed_dim";
      const bool network = info.kind == MethodKind::network && !method_keys.contains(key);
      if (shared || network || own.contains(key)) out[py::str(key)] = json_to_python(value);
    }
    return out;
  }

  std::string repr() const {
    return fmt::format("<semcodec.Codec {} D={} slots={} raw_bits={:g} coder={} fingerprint={}... from '{}'>",
                       quantizer().name(), dim(), slots(), quantizer().raw_bits(), coder_name(codec_->coder_id()),
                       fingerprint_hex(codec_->fingerprint()).substr(0, 16), path_);
  }

  // Indices outside [0, K_s) are the caller's error, told apart from the library's.
  void check_index_range(const py::array_t<int64_t, py::array::c_style>& a) const {
    const int64_t* p = a.data();
    const int64_t n = a.shape(0), s = slots();
    const std::vector<int64_t> k = alphabet_sizes();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < s; ++j)
        if (p[i * s + j] < 0 || p[i * s + j] >= k[j])
          throw py::value_error(fmt::format("Codec.dequantize(indices): index {} at row {}, slot {} is outside [0, {})",
                                            p[i * s + j], i, j, k[j]));
  }

  std::unique_ptr<Codec> codec_;
  std::string path_, device_;
  nlohmann::json config_, entropy_;
  ModelConfig model_;
  std::vector<int64_t> train_classes_, heldout_classes_;
};

py::array int64_array(const std::vector<int64_t>& v) {
  return to_numpy(at::tensor(v, at::kLong));
}

}  // namespace

void bind_codec(py::module_& m) {
  py::class_<PyCodec, std::shared_ptr<PyCodec>>(m, "Codec", R"(A checkpoint's codec: embeddings <-> bytes.

Load one with Codec.load(path). encode/decode make and read the same SCB1
streams as `semcodec compress` / `decompress` (docs/bitstream.md);
encode_packet/decode_packet one-item packets. Embeddings are [N, D] arrays of
any float dtype (converted to float32; float32 C-contiguous input is not
copied); results are float32 / int64 numpy arrays.)")
      .def_static("load", &PyCodec::load, py::arg("path"), py::arg("device") = "cpu",
                  "Loads the checkpoint (.safetensors with entropy tables) and builds its codec on `device` "
                  "(cpu, cuda, cuda:N or auto).")
      .def("encode", &PyCodec::encode, py::arg("x"), "Embeddings [N, D] -> an SCB1 stream (bytes).")
      .def("decode", &PyCodec::decode, py::arg("stream"),
           "An SCB1 stream -> reconstructed embeddings [N, D] float32. Raises semcodec.Error for a corrupt stream "
           "or one made with another checkpoint.")
      .def("decode_indices", &PyCodec::decode_indices, py::arg("stream"),
           "An SCB1 stream -> its indices [N, slots] int64, checked but without running the decoder.")
      .def("indices", &PyCodec::indices, py::arg("x"),
           "Embeddings [N, D] -> the indices [N, slots] int64 that encode(x) codes, i.e. decode_indices(encode(x)) "
           "without the entropy coder. Adaptive methods plan them from all rows of x, as a stream does.")
      .def("reconstruct", &PyCodec::reconstruct, py::arg("x"),
           "Embeddings [N, D] -> what decode(encode(x)) returns (float32 [N, D]), without the entropy coder.")
      .def("dequantize", &PyCodec::dequantize, py::arg("indices"),
           "Indices [N, slots] (any integer dtype) -> embeddings [N, D] float32, in the method's fixed context: "
           "the inverse of indices() for non-adaptive methods; for adaptive ones the context of packets.")
      .def("encode_packet", &PyCodec::encode_packet, py::arg("x"),
           "One embedding [D] or [1, D] -> a packet (5-byte header + payload).")
      .def("decode_packet", &PyCodec::decode_packet, py::arg("packet"),
           "A packet -> the reconstructed embedding [D] float32.")
      .def("rate", &PyCodec::rate, py::arg("stream"),
           "Where a stream's bytes go (items, slots, total/header/framing/payload bytes, payload and total bits per "
           "item), after checking that it decodes with this codec.")
      .def("bits_per_item", &PyCodec::bits_per_item, py::arg("data"),
           "Payload bits per item counted from the bytes of a real stream: of `data` when it is a stream (bytes), "
           "else of encode(data).")
      .def_property_readonly("path", [](const PyCodec& c) { return c.path_; })
      .def_property_readonly("device", [](const PyCodec& c) { return c.device_; })
      .def_property_readonly("method", [](const PyCodec& c) { return c.config_.at("model").at("method").get<std::string>(); })
      .def_property_readonly("name", [](const PyCodec& c) { return c.quantizer().name(); })
      .def_property_readonly("fingerprint", [](const PyCodec& c) { return fingerprint_hex(c.codec_->fingerprint()); },
                             "SHA-256 of codebook, decoder and coder tables (64 hex digits); streams carry it.")
      .def_property_readonly("coder", [](const PyCodec& c) { return std::string(coder_name(c.codec_->coder_id())); })
      .def_property_readonly("table_mode",
                             [](const PyCodec& c) {
                               // The spelling of fit-entropy's --tables and of the checkpoint's metadata.
                               std::string name = table_mode_name(c.codec_->model().mode());
                               std::replace(name.begin(), name.end(), '_', '-');
                               return name;
                             })
      .def_property_readonly("adaptive", [](const PyCodec& c) { return c.adaptive(); },
                             "Whether streams carry side information planned from their rows (adaptive_klt); "
                             "slots and alphabet_sizes are then the fixed context's (packets, dequantize).")
      .def_property_readonly("embed_dim", &PyCodec::dim)
      .def_property_readonly("slots", &PyCodec::slots)
      .def_property_readonly("alphabet_sizes", &PyCodec::alphabet_sizes)
      .def_property_readonly("raw_bits", [](const PyCodec& c) { return c.quantizer().raw_bits(); },
                             "Bits per item of fixed-length codes: sum over slots of ceil(log2 K).")
      .def_property_readonly("settings", &PyCodec::settings,
                             "The method's settings from the checkpoint's resolved config (dict).")
      .def_property_readonly("config", [](const PyCodec& c) { return json_to_python(c.config_); },
                             "The checkpoint's whole resolved run config (dict of sections).")
      .def_property_readonly("entropy", [](const PyCodec& c) { return json_to_python(c.entropy_); },
                             "The entropy-table metadata (coder, table mode, fit report).")
      .def_property_readonly("train_classes", [](const PyCodec& c) { return int64_array(c.train_classes_); })
      .def_property_readonly("heldout_classes", [](const PyCodec& c) { return int64_array(c.heldout_classes_); })
      .def_property("batch_size", [](const PyCodec& c) { return c.codec_->batch_size(); },
                    [](PyCodec& c, int64_t rows) { c.codec_->set_batch_size(rows); },
                    "Rows per network call (default 4096, as the CLI's --batch).")
      .def("__repr__", &PyCodec::repr);
}

}  // namespace semcodec::python
