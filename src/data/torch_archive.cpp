#include "data/torch_archive.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "util/error.h"

namespace semcodec {

namespace {

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
constexpr int64_t kMaxElements = int64_t{1} << 60;  // keeps every product and sum below int64 overflow

struct DtypeInfo {
  const char* storage;  // torch.<storage>
  TorchDtype dtype;
  const char* name;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"DoubleStorage", TorchDtype::Float64, "float64", 8}, {"FloatStorage", TorchDtype::Float32, "float32", 4},
    {"HalfStorage", TorchDtype::Float16, "float16", 2},   {"BFloat16Storage", TorchDtype::BFloat16, "bfloat16", 2},
    {"LongStorage", TorchDtype::Int64, "int64", 8},       {"IntStorage", TorchDtype::Int32, "int32", 4},
    {"ShortStorage", TorchDtype::Int16, "int16", 2},      {"CharStorage", TorchDtype::Int8, "int8", 1},
    {"ByteStorage", TorchDtype::UInt8, "uint8", 1},       {"BoolStorage", TorchDtype::Bool, "bool", 1},
};

const DtypeInfo& info(TorchDtype d) {
  for (const DtypeInfo& i : kDtypes)
    if (i.dtype == d) return i;
  return kDtypes[1];
}

// Names and keys from the file, safe to print.
std::string printable(std::string_view s, size_t max_len = 200) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max_len) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

// --- the pickle VM ---------------------------------------------------------------

// What a GLOBAL may name.
enum class Fn : uint8_t {
  RebuildTensorV2,
  RebuildParameter,
  RebuildParameterWithState,
  OrderedDict,
  TypedList,       // torch.jit._pickle.build_*list
  RestoreTypeTag,  // torch.jit._pickle.restore_type_tag
  StorageType,
  TorchClass,      // __torch__.* (TorchScript)
};

struct Node {
  enum class K : uint8_t { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Object };
  K k = K::None;
  bool b = false;  // Bool; Tensor: requires_grad
  Fn fn = Fn::OrderedDict;
  TorchDtype dtype = TorchDtype::Float32;  // Global StorageType
  int64_t i = 0;                           // Int; Tensor: storage offset; Storage: index of the storage
  double f = 0.0;                          // Float
  std::string s;                           // Str; Global and Object: qualified name
  std::vector<uint32_t> items;             // Tuple, List; Dict: key, value, key, value, ...
  std::vector<int64_t> dims;               // Tensor: shape, then strides
  uint32_t ref = kNil;                     // Tensor: its Storage node; Object and Dict: the BUILD state
};

const char* kind_name(Node::K k) {
  switch (k) {
    case Node::K::None: return "None";
    case Node::K::Bool: return "bool";
    case Node::K::Int: return "int";
    case Node::K::Float: return "float";
    case Node::K::Str: return "str";
    case Node::K::Tuple: return "tuple";
    case Node::K::List: return "list";
    case Node::K::Dict: return "dict";
    case Node::K::Global: return "class or function reference";
    case Node::K::Storage: return "storage";
    case Node::K::Tensor: return "tensor";
    case Node::K::Object: return "object";
  }
  return "?";
}

struct StorageDecl {
  std::string key, location;
  TorchDtype dtype;
  uint64_t numel;
};

struct PickleContext {
  std::string where;  // "<file>: data.pkl"
  const TorchArchiveLimits* limits;
  bool torchscript;
  // Throws unless __torch__ class `module.name` may be read as attributes.
  std::function<void(const std::string& module, const std::string& name)> check_class;
};

class PickleVM {
 public:
  PickleVM(const uint8_t* data, size_t size, const PickleContext& ctx) : p_(data), n_(size), ctx_(ctx) {}

  uint32_t run();
  std::vector<Node> nodes;
  std::vector<StorageDecl> storages;

 private:
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> f, Args&&... args) const {
    throw Error(fmt::format("{}, byte {}: {}", ctx_.where, op_pos_, fmt::format(f, std::forward<Args>(args)...)));
  }

  const uint8_t* take(size_t k) {
    if (n_ - pos_ < k) error("truncated pickle (needs {} more bytes, {} left)", k, n_ - pos_);
    const uint8_t* r = p_ + pos_;
    pos_ += k;
    return r;
  }
  uint64_t take_le(int bytes) {
    const uint8_t* b = take(static_cast<size_t>(bytes));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  std::string take_line() {
    const size_t limit = std::min<size_t>(n_ - pos_, 1024);
    const void* nl = std::memchr(p_ + pos_, '\n', limit);
    if (!nl) error("GLOBAL name without a newline within 1024 bytes");
    const size_t len = static_cast<const uint8_t*>(nl) - (p_ + pos_);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len + 1;
    return s;
  }

  uint32_t add(Node&& node) {
    if (nodes.size() >= ctx_.limits->max_values) error("more than {} values (limit)", ctx_.limits->max_values);
    nodes.push_back(std::move(node));
    return static_cast<uint32_t>(nodes.size() - 1);
  }
  uint32_t add(Node::K k) {
    Node node;
    node.k = k;
    return add(std::move(node));
  }
  void push(uint32_t id) { stack_.push_back(id); }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t pop() {
    if (stack_.size() <= floor()) error("stack underflow");
    const uint32_t v = stack_.back();
    stack_.pop_back();
    return v;
  }
  uint32_t top() {
    if (stack_.size() <= floor()) error("stack underflow");
    return stack_.back();
  }
  // Items above the last MARK, which is removed.
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) error("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Node& node(uint32_t id) { return nodes[id]; }
  Node& expect(uint32_t id, Node::K k, const char* what) {
    if (nodes[id].k != k) error("{} must be a {}, found a {}", what, kind_name(k), kind_name(nodes[id].k));
    return nodes[id];
  }

  void string_op(uint64_t len) {
    if (len > ctx_.limits->max_string_bytes) error("string of {} bytes (limit {})", len, ctx_.limits->max_string_bytes);
    const uint8_t* b = take(static_cast<size_t>(len));
    Node s;
    s.k = Node::K::Str;
    s.s.assign(reinterpret_cast<const char*>(b), static_cast<size_t>(len));
    push(add(std::move(s)));
  }
  void int_op(int64_t v) {
    Node x;
    x.k = Node::K::Int;
    x.i = v;
    push(add(std::move(x)));
  }
  void memo_put(uint64_t index) {
    const uint32_t v = top();
    if (index > std::numeric_limits<uint32_t>::max()) error("memo index {} out of range", index);
    if (memo_.size() >= ctx_.limits->max_memo && !memo_.count(static_cast<uint32_t>(index)))
      error("more than {} memo entries (limit)", ctx_.limits->max_memo);
    memo_[static_cast<uint32_t>(index)] = v;
  }
  void memo_get(uint64_t index) {
    auto it = memo_.find(static_cast<uint32_t>(index));
    if (index > std::numeric_limits<uint32_t>::max() || it == memo_.end()) error("memo entry {} was never stored", index);
    push(it->second);
  }
  void make_tuple(std::vector<uint32_t> items) {
    Node t;
    t.k = Node::K::Tuple;
    t.items = std::move(items);
    push(add(std::move(t)));
  }

  void set_item(uint32_t dict, uint32_t key, uint32_t value);
  void append(uint32_t list, uint32_t value);
  void global(const std::string& module, const std::string& name);
  void reduce();
  void newobj();
  void build();
  void persistent_id();
  uint32_t rebuild_tensor(const std::vector<uint32_t>& args);
  void empty_hooks(uint32_t id, const char* what) {
    const Node& h = nodes[id];
    if (h.k == Node::K::None) return;
    if (h.k != Node::K::Dict || !h.items.empty()) error("{} must be empty: tensors with hooks or extra state are not supported", what);
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  const PickleContext& ctx_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
  // Dict keys already present: (dict, key) -> position of the value in items.
  std::unordered_map<uint32_t, std::unordered_map<std::string, size_t>> str_keys_;
  std::unordered_map<uint32_t, std::unordered_map<int64_t, size_t>> int_keys_;
  std::map<std::string, size_t> storage_index_;
};

void PickleVM::set_item(uint32_t dict, uint32_t key, uint32_t value) {
  Node& d = expect(dict, Node::K::Dict, "the target of SETITEM");
  const Node& k = nodes[key];
  size_t* slot = nullptr;
  if (k.k == Node::K::Str) {
    auto [it, fresh] = str_keys_[dict].emplace(k.s, d.items.size() + 1);
    if (!fresh) slot = &it->second;
  } else if (k.k == Node::K::Int) {
    auto [it, fresh] = int_keys_[dict].emplace(k.i, d.items.size() + 1);
    if (!fresh) slot = &it->second;
  } else {
    error("dict key is a {}: only str and int keys are supported", kind_name(k.k));
  }
  if (slot) {
    d.items[*slot] = value;  // a repeated key replaces the value, as in Python
  } else {
    d.items.push_back(key);
    d.items.push_back(value);
  }
}

void PickleVM::append(uint32_t list, uint32_t value) {
  expect(list, Node::K::List, "the target of APPEND")  // (a list)
      .items.push_back(value);
}

void PickleVM::global(const std::string& module, const std::string& name) {
  Node g;
  g.k = Node::K::Global;
  g.s = module + "." + name;
  bool ok = true;
  if (module == "torch._utils" && name == "_rebuild_tensor_v2") g.fn = Fn::RebuildTensorV2;
  else if (module == "torch._utils" && name == "_rebuild_parameter") g.fn = Fn::RebuildParameter;
  else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") g.fn = Fn::RebuildParameterWithState;
  else if (module == "collections" && name == "OrderedDict") g.fn = Fn::OrderedDict;
  else if (module == "torch.jit._pickle" && (name == "build_intlist" || name == "build_doublelist" ||
                                             name == "build_boollist" || name == "build_tensorlist"))
    g.fn = Fn::TypedList;
  else if (module == "torch.jit._pickle" && name == "restore_type_tag") g.fn = Fn::RestoreTypeTag;
  else if (module == "torch") {
    ok = false;
    for (const DtypeInfo& d : kDtypes)
      if (name == d.storage) {
        g.fn = Fn::StorageType;
        g.dtype = d.dtype;
        ok = true;
      }
  } else if (module == "__torch__" || module.compare(0, 10, "__torch__.") == 0) {
    if (!ctx_.torchscript)
      error("class '{}.{}' in a torch.save file: TorchScript classes are read only from TorchScript archives, whose code/ is checked",
            printable(module), printable(name));
    ctx_.check_class(module, name);
    g.fn = Fn::TorchClass;
  } else {
    ok = false;
  }
  if (!ok)
    error("refusing global '{}.{}': only tensor rebuilding, storage types and plain containers are allowed "
          "(nothing in the file is executed)",
          printable(module), printable(name));
  push(add(std::move(g)));
}

void PickleVM::persistent_id() {
  const uint32_t pid = pop();
  const Node& t = nodes[pid];
  if (t.k != Node::K::Tuple || t.items.size() != 5 || nodes[t.items[0]].k != Node::K::Str ||
      nodes[t.items[0]].s != "storage")
    error("unsupported persistent id (expected ('storage', type, key, location, numel))");
  const Node& type = nodes[t.items[1]];
  if (type.k != Node::K::Global || type.fn != Fn::StorageType) error("persistent id names no storage type");
  const Node& key = expect(t.items[2], Node::K::Str, "the storage key");
  const Node& loc = expect(t.items[3], Node::K::Str, "the storage location");
  const Node& numel = expect(t.items[4], Node::K::Int, "the storage size");
  if (numel.i < 0 || numel.i > kMaxElements / 8) error("storage '{}' declares {} elements", printable(key.s), numel.i);
  Node s;
  s.k = Node::K::Storage;
  auto [it, fresh] = storage_index_.emplace(key.s, storages.size());
  if (fresh) {
    storages.push_back({key.s, loc.s, type.dtype, static_cast<uint64_t>(numel.i)});
  } else {
    const StorageDecl& d = storages[it->second];
    if (d.dtype != type.dtype || d.numel != static_cast<uint64_t>(numel.i))
      error("storage '{}' is declared twice with different types or sizes ({} x {}, then {} x {})", printable(key.s),
            d.numel, info(d.dtype).name, numel.i, info(type.dtype).name);
  }
  s.i = static_cast<int64_t>(it->second);
  push(add(std::move(s)));
}

uint32_t PickleVM::rebuild_tensor(const std::vector<uint32_t>& a) {
  if (a.size() != 6 && a.size() != 7) error("_rebuild_tensor_v2 takes 6 or 7 arguments, got {}", a.size());
  const Node& storage = expect(a[0], Node::K::Storage, "_rebuild_tensor_v2's storage");
  const Node& offset = expect(a[1], Node::K::Int, "the storage offset");
  const Node& size = nodes[a[2]];
  const Node& stride = nodes[a[3]];
  if ((size.k != Node::K::Tuple && size.k != Node::K::List) || (stride.k != Node::K::Tuple && stride.k != Node::K::List))
    error("tensor size and stride must be tuples");
  if (size.items.size() != stride.items.size())
    error("tensor size has {} dimensions, its stride {}", size.items.size(), stride.items.size());
  if (size.items.size() > ctx_.limits->max_rank)
    error("tensor of rank {} (limit {})", size.items.size(), ctx_.limits->max_rank);
  const Node& grad = expect(a[4], Node::K::Bool, "requires_grad");
  empty_hooks(a[5], "backward hooks");
  if (a.size() == 7) empty_hooks(a[6], "tensor metadata");
  Node t;
  t.k = Node::K::Tensor;
  t.ref = a[0];
  t.i = offset.i;
  t.b = grad.b;
  for (const Node* list : {&size, &stride})
    for (uint32_t id : list->items) t.dims.push_back(expect(id, Node::K::Int, "a tensor size or stride").i);
  (void)storage;
  return add(std::move(t));
}

void PickleVM::reduce() {
  const uint32_t args_id = pop();
  const uint32_t fn_id = pop();
  const Node& f = nodes[fn_id];
  if (f.k != Node::K::Global) error("REDUCE calls a {}, not an allowed function", kind_name(f.k));
  const std::vector<uint32_t> args = expect(args_id, Node::K::Tuple, "REDUCE's arguments").items;
  switch (f.fn) {
    case Fn::RebuildTensorV2: push(rebuild_tensor(args)); return;
    case Fn::RebuildParameter:
    case Fn::RebuildParameterWithState: {
      const size_t want = f.fn == Fn::RebuildParameter ? 3 : 4;
      if (args.size() != want) error("{} takes {} arguments, got {}", f.s, want, args.size());
      Node t = expect(args[0], Node::K::Tensor, "a parameter's data");
      t.b = expect(args[1], Node::K::Bool, "requires_grad").b;
      empty_hooks(args[2], "backward hooks");
      if (want == 4) empty_hooks(args[3], "parameter state");
      push(add(std::move(t)));
      return;
    }
    case Fn::OrderedDict:
      if (!args.empty()) error("collections.OrderedDict is only read with no arguments");
      push(add(Node::K::Dict));
      return;
    case Fn::TypedList:
      if (args.size() != 1) error("{} takes 1 argument, got {}", f.s, args.size());
      expect(args[0], Node::K::List, "a typed list");
      push(args[0]);
      return;
    case Fn::RestoreTypeTag:
      if (args.size() != 2) error("restore_type_tag takes 2 arguments, got {}", args.size());
      expect(args[1], Node::K::Str, "a type tag");
      push(args[0]);
      return;
    case Fn::StorageType:
    case Fn::TorchClass: break;
  }
  error("refusing to call '{}'", printable(f.s));
}

void PickleVM::newobj() {
  const uint32_t args_id = pop();
  const uint32_t cls_id = pop();
  const Node& cls = nodes[cls_id];
  if (cls.k != Node::K::Global || cls.fn != Fn::TorchClass)
    error("NEWOBJ creates only TorchScript (__torch__) objects, not a {}",
          cls.k == Node::K::Global ? "'" + printable(cls.s) + "'" : std::string(kind_name(cls.k)));
  if (!expect(args_id, Node::K::Tuple, "NEWOBJ's arguments").items.empty())
    error("NEWOBJ of '{}' with constructor arguments", printable(cls.s));
  Node o;
  o.k = Node::K::Object;
  o.s = cls.s;
  push(add(std::move(o)));
}

void PickleVM::build() {
  const uint32_t state = pop();
  Node& target = nodes[top()];
  const Node& st = nodes[state];
  if (target.k == Node::K::Object) {
    if (target.ref != kNil) error("object of class '{}' is built twice", printable(target.s));
    if (st.k != Node::K::Dict)
      error("object of class '{}' has a {} as its state, not an attribute dict (only a __setstate__ method could read it)",
            printable(target.s), kind_name(st.k));
    for (size_t i = 0; i < st.items.size(); i += 2)
      if (nodes[st.items[i]].k != Node::K::Str) error("object of class '{}' has a non-string attribute name", printable(target.s));
    target.ref = state;
  } else if (target.k == Node::K::Dict && (st.k == Node::K::Dict || st.k == Node::K::None)) {
    target.ref = state;  // an OrderedDict's instance attributes (a state dict's _metadata): kept aside
  } else {
    error("BUILD on a {} with a {} state is not supported", kind_name(target.k), kind_name(st.k));
  }
}

uint32_t PickleVM::run() {
  const TorchArchiveLimits& lim = *ctx_.limits;
  while (true) {
    op_pos_ = pos_;
    if (pos_ >= n_) error("truncated pickle (ends without STOP)");
    const uint8_t op = p_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        const uint64_t v = take_le(1);
        if (v < 2 || v > 5) error("unsupported pickle protocol {}", v);
        break;
      }
      case 0x95: {  // FRAME: a length hint
        const uint64_t len = take_le(8);
        if (len > n_ - pos_) error("frame of {} bytes runs past the pickle", len);
        break;
      }
      case '}': push(add(Node::K::Dict)); break;
      case ']': push(add(Node::K::List)); break;
      case ')': make_tuple({}); break;
      case '(':
        if (marks_.size() >= lim.max_depth) error("more than {} nested MARKs (limit)", lim.max_depth);
        marks_.push_back(stack_.size());
        break;
      case '1': pop_mark(); break;  // POP_MARK
      case '0': pop(); break;       // POP
      case '2': push(top()); break;  // DUP
      case 'K': int_op(static_cast<int64_t>(take_le(1))); break;
      case 'M': int_op(static_cast<int64_t>(take_le(2))); break;
      case 'J': int_op(static_cast<int32_t>(static_cast<uint32_t>(take_le(4)))); break;
      case 0x8a: {  // LONG1
        const uint64_t len = take_le(1);
        if (len > 8) error("integer of {} bytes does not fit in 64 bits", len);
        const uint8_t* b = take(static_cast<size_t>(len));
        uint64_t v = 0;
        for (uint64_t i = len; i-- > 0;) v = (v << 8) | b[i];
        if (len > 0 && len < 8 && (b[len - 1] & 0x80)) v |= ~uint64_t{0} << (8 * len);  // sign-extend
        int64_t s;
        std::memcpy(&s, &v, sizeof s);
        int_op(s);
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const uint8_t* b = take(8);
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
        Node x;
        x.k = Node::K::Float;
        std::memcpy(&x.f, &v, sizeof v);
        push(add(std::move(x)));
        break;
      }
      case 'N': push(add(Node::K::None)); break;
      case 0x88:
      case 0x89: {
        Node x;
        x.k = Node::K::Bool;
        x.b = op == 0x88;
        push(add(std::move(x)));
        break;
      }
      case 'X': string_op(take_le(4)); break;     // BINUNICODE
      case 0x8c: string_op(take_le(1)); break;    // SHORT_BINUNICODE
      case 0x8d: string_op(take_le(8)); break;    // BINUNICODE8
      case 'q': memo_put(take_le(1)); break;      // BINPUT
      case 'r': memo_put(take_le(4)); break;      // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break;   // MEMOIZE
      case 'h': memo_get(take_le(1)); break;      // BINGET
      case 'j': memo_get(take_le(4)); break;      // LONG_BINGET
      case 't': make_tuple(pop_mark()); break;
      case 0x85:
      case 0x86:
      case 0x87: {
        std::vector<uint32_t> items(static_cast<size_t>(op - 0x84));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        make_tuple(std::move(items));
        break;
      }
      case 's': {
        const uint32_t v = pop(), k = pop();
        set_item(top(), k, v);
        break;
      }
      case 'u': {
        const std::vector<uint32_t> kv = pop_mark();
        if (kv.size() % 2) error("SETITEMS with an odd number of items");
        const uint32_t d = top();
        for (size_t i = 0; i < kv.size(); i += 2) set_item(d, kv[i], kv[i + 1]);
        break;
      }
      case 'a': {
        const uint32_t v = pop();
        append(top(), v);
        break;
      }
      case 'e': {
        const std::vector<uint32_t> vs = pop_mark();
        const uint32_t l = top();
        for (uint32_t v : vs) append(l, v);
        break;
      }
      case 'c': {
        const std::string module = take_line();
        const std::string name = take_line();
        global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const uint32_t name = pop(), module = pop();
        global(expect(module, Node::K::Str, "STACK_GLOBAL's module").s, expect(name, Node::K::Str, "STACK_GLOBAL's name").s);
        break;
      }
      case 'R': reduce(); break;
      case 0x81: newobj(); break;
      case 'b': build(); break;
      case 'Q': persistent_id(); break;
      case '.': {  // STOP
        if (!marks_.empty() || stack_.size() != 1) error("STOP with {} values and {} MARKs left", stack_.size(), marks_.size());
        return stack_.back();
      }
      default:
        error("unsupported pickle opcode 0x{:02x} ('{}')", op, printable(std::string(1, static_cast<char>(op))));
    }
  }
}

// --- from VM nodes to the result -------------------------------------------------

class Converter {
 public:
  Converter(const PickleVM& vm, const std::string& where, const TorchArchiveLimits& limits, uint64_t pickle_bytes)
      : vm_(vm), where_(where), limits_(limits), max_string_bytes_(4 * pickle_bytes + (1u << 20)) {
    for (const StorageDecl& d : vm.storages) {
      auto s = std::make_shared<TorchStorage>();
      s->key = d.key;
      s->location = d.location;
      s->dtype = d.dtype;
      s->numel = d.numel;
      storages.push_back(std::move(s));
    }
  }

  void convert(uint32_t id, TorchValue& out, uint32_t depth) {
    if (depth > limits_.max_depth)
      fail("{}: values nested deeper than {} levels (limit; or a cyclic structure)", where_, limits_.max_depth);
    if (++values_ > limits_.max_values) fail("{}: more than {} values (limit)", where_, limits_.max_values);
    const Node& n = vm_.nodes[id];
    using K = TorchValue::Kind;
    switch (n.k) {
      case Node::K::None: out.kind = K::None; return;
      case Node::K::Bool: out.kind = K::Bool; out.boolean = n.b; return;
      case Node::K::Int: out.kind = K::Int; out.integer = n.i; return;
      case Node::K::Float: out.kind = K::Float; out.real = n.f; return;
      case Node::K::Str:
        out.kind = K::String;
        out.text = copy_string(n.s);
        return;
      case Node::K::Tuple:
      case Node::K::List:
        out.kind = n.k == Node::K::Tuple ? K::Tuple : K::List;
        reserve_values(n.items.size());
        out.items.resize(n.items.size());
        for (size_t i = 0; i < n.items.size(); ++i) convert(n.items[i], out.items[i], depth + 1);
        return;
      case Node::K::Dict: out.kind = K::Dict; convert_entries(n, out, depth); return;
      case Node::K::Object:
        if (n.ref == kNil) fail("{}: object of class '{}' has no state", where_, printable(n.s));
        out.kind = K::Object;
        out.text = copy_string(n.s);
        convert_entries(vm_.nodes[n.ref], out, depth);
        return;
      case Node::K::Tensor: out.kind = K::Tensor; out.tensor = tensor(n); return;
      case Node::K::Global:
        fail("{}: '{}' appears as a value (a class or function is not data)", where_, printable(n.s));
      case Node::K::Storage:
        fail("{}: a bare storage ('{}') appears as a value; only tensors are read", where_,
             printable(vm_.storages[static_cast<size_t>(n.i)].key));
    }
  }

  std::vector<std::shared_ptr<TorchStorage>> storages;
  std::set<size_t> used;  // storages some tensor views

 private:
  // Strings are copied once per reference: bounded in total.
  const std::string& copy_string(const std::string& s) {
    string_bytes_ += s.size();
    if (string_bytes_ > max_string_bytes_)
      fail("{}: strings add up to more than {} bytes once shared references are expanded", where_, max_string_bytes_);
    return s;
  }

  // Checks the budget before a container's values are allocated.
  void reserve_values(uint64_t n) {
    if (n > limits_.max_values - std::min(values_, limits_.max_values))
      fail("{}: more than {} values (limit)", where_, limits_.max_values);
  }

  void convert_entries(const Node& dict, TorchValue& out, uint32_t depth) {
    reserve_values(dict.items.size());
    out.entries.resize(dict.items.size() / 2);
    for (size_t i = 0; i < out.entries.size(); ++i) {
      convert(dict.items[2 * i], out.entries[i].key, depth + 1);
      convert(dict.items[2 * i + 1], out.entries[i].value, depth + 1);
    }
  }

  TorchTensorPtr tensor(const Node& n) {
    auto it = tensors_.find(&n);
    if (it != tensors_.end()) return it->second;
    const size_t si = static_cast<size_t>(vm_.nodes[n.ref].i);
    const std::shared_ptr<TorchStorage>& storage = storages[si];
    auto t = std::make_shared<TorchTensor>();
    t->dtype = storage->dtype;
    t->requires_grad = n.b;
    t->storage_offset = n.i;
    const size_t rank = n.dims.size() / 2;
    t->shape.assign(n.dims.begin(), n.dims.begin() + static_cast<std::ptrdiff_t>(rank));
    t->strides.assign(n.dims.begin() + static_cast<std::ptrdiff_t>(rank), n.dims.end());
    const std::string what = fmt::format("{}: tensor on storage '{}' ({} x {})", where_, printable(storage->key),
                                         storage->numel, info(storage->dtype).name);
    if (t->storage_offset < 0 || t->storage_offset > kMaxElements) fail("{}: storage offset {}", what, t->storage_offset);
    int64_t numel = 1, last = t->storage_offset;
    for (size_t d = 0; d < rank; ++d) {
      const int64_t size = t->shape[d], stride = t->strides[d];
      if (size < 0 || stride < 0) fail("{}: negative size or stride in dimension {}", what, d);
      if (size > 0 && numel > kMaxElements / size) fail("{}: shape [{}] has too many elements", what, fmt::join(t->shape, ", "));
      numel *= size;
    }
    if (numel > 0) {
      for (size_t d = 0; d < rank; ++d) {
        const int64_t span = t->shape[d] - 1, stride = t->strides[d];
        if (stride > 0 && span > (kMaxElements - last) / stride)
          fail("{}: strides [{}] address elements far beyond the storage", what, fmt::join(t->strides, ", "));
        last += span * stride;
      }
      if (static_cast<uint64_t>(last) >= storage->numel)
        fail("{}: view (shape [{}], strides [{}], offset {}) needs {} elements, the storage holds {}", what,
             fmt::join(t->shape, ", "), fmt::join(t->strides, ", "), t->storage_offset, last + 1, storage->numel);
    } else if (static_cast<uint64_t>(t->storage_offset) > storage->numel) {
      fail("{}: storage offset {} beyond the storage", what, t->storage_offset);
    }
    if (used.insert(si).second) storage_bytes_ += storage->numel * element_size(storage->dtype);
    view_bytes_ += static_cast<uint64_t>(numel) * element_size(t->dtype);
    if (view_bytes_ > limits_.max_view_amplification * storage_bytes_ + (1u << 20))
      fail("{}: tensor views address {} bytes, far more than their storages hold ({} bytes; limit x{})", where_,
           view_bytes_, storage_bytes_, limits_.max_view_amplification);
    t->storage = storage;
    tensors_.emplace(&n, t);
    return t;
  }

  const PickleVM& vm_;
  const std::string& where_;
  const TorchArchiveLimits& limits_;
  uint64_t max_string_bytes_;
  uint64_t values_ = 0, string_bytes_ = 0, view_bytes_ = 0, storage_bytes_ = 0;
  std::unordered_map<const Node*, TorchTensorPtr> tensors_;
};

// --- TorchScript classes -----------------------------------------------------------

bool is_identifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

// The classes a code/ file defines: lines "class <name>(" or "class <name>:".
std::unordered_set<std::string> defined_classes(const std::string& source) {
  std::unordered_set<std::string> out;
  for (size_t line = 0; line < source.size();) {
    size_t end = source.find('\n', line);
    if (end == std::string::npos) end = source.size();
    if (source.compare(line, 6, "class ") == 0) {
      size_t name_end = line + 6;
      while (name_end < end && source[name_end] != '(' && source[name_end] != ':') ++name_end;
      if (name_end < end) out.insert(source.substr(line + 6, name_end - line - 6));
    }
    line = end + 1;
  }
  return out;
}

// torch::jit::load finds class a.b.C in code/a/b.py and, if the class defines
// __setstate__, runs it on the object's state. Such classes are refused: the
// rule is that the file must not contain the word __setstate__ at all, which
// needs no parsing (no way to hide the method from a scanner) and holds for
// every scripted or traced nn.Module and OpenAI's CLIP archives.
class ClassChecker {
 public:
  ClassChecker(const ZipArchive& zip, const std::string& prefix, const TorchArchiveLimits& limits)
      : zip_(zip), prefix_(prefix), limits_(limits) {}

  void operator()(const std::string& module, const std::string& name) {
    const std::string cls = module + "." + name;
    if (checked_.count(cls)) return;
    const std::string shown = printable(cls);
    std::string path = prefix_ + "/code/";
    size_t start = 0;
    while (true) {
      const size_t dot = module.find('.', start);
      const std::string part = module.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!is_identifier(part)) fail("{}: refusing class '{}': not a valid TorchScript class name", zip_.name(), shown);
      path += part;
      if (dot == std::string::npos) break;
      path += '/';
      start = dot + 1;
    }
    path += ".py";
    if (!is_identifier(name)) fail("{}: refusing class '{}': not a valid TorchScript class name", zip_.name(), shown);
    auto it = sources_.find(path);
    if (it == sources_.end()) {
      const ZipEntry* e = zip_.find(path);
      if (!e) fail("{}: refusing class '{}': the archive has no code for it ({} is missing)", zip_.name(), shown, path);
      if (e->size > limits_.max_code_bytes || code_bytes_ + e->size > 4 * limits_.max_code_bytes)
        fail("{}: refusing class '{}': its code ({}, {} bytes) exceeds the limits", zip_.name(), shown, path, e->size);
      code_bytes_ += e->size;
      const std::vector<uint8_t> bytes = zip_.read(*e, limits_.max_code_bytes);
      const std::string source(bytes.begin(), bytes.end());
      it = sources_.emplace(path, Source{source.find("__setstate__") != std::string::npos, defined_classes(source)}).first;
    }
    if (it->second.mentions_setstate)
      fail("{}: refusing class '{}': its code ({}) defines or mentions __setstate__, which PyTorch would run on load; "
           "only plain attribute state is read (nothing in the file is executed)",
           zip_.name(), shown, path);
    if (!it->second.classes.count(name))
      fail("{}: refusing class '{}': {} does not define it", zip_.name(), shown, path);
    checked_.insert(cls);
  }

 private:
  const ZipArchive& zip_;
  const std::string& prefix_;
  const TorchArchiveLimits& limits_;
  std::unordered_set<std::string> checked_;
  struct Source {
    bool mentions_setstate;
    std::unordered_set<std::string> classes;
  };
  std::unordered_map<std::string, Source> sources_;  // by code/ path, each read once
  uint64_t code_bytes_ = 0;
};

// --- the archive -------------------------------------------------------------------

struct ArchiveLayout {
  std::string prefix;
  TorchArchiveKind kind;
};

// The folder holding data.pkl, the byte order, and whether code/ makes it TorchScript.
ArchiveLayout archive_layout(const ZipArchive& zip) {
  const std::string& name = zip.name();
  std::vector<std::string> prefixes;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && slash > 0 && e.name.compare(slash, std::string::npos, "/data.pkl") == 0)
      prefixes.push_back(e.name.substr(0, slash));
  }
  if (prefixes.empty()) fail("{}: not a PyTorch archive (a zip without <folder>/data.pkl)", name);
  if (prefixes.size() > 1)
    fail("{}: ambiguous PyTorch archive: {} folders hold a data.pkl ('{}', '{}', ...)", name, prefixes.size(),
         printable(prefixes[0]), printable(prefixes[1]));
  ArchiveLayout out{prefixes[0], TorchArchiveKind::TorchSave};
  if (const ZipEntry* bo = zip.find(out.prefix + "/byteorder")) {
    const std::vector<uint8_t> b = zip.read(*bo, 16);
    const std::string order(b.begin(), b.end());
    if (order == "big")
      fail("{}: saved on a big-endian machine (byteorder 'big'); only little-endian archives are supported", name);
    if (order != "little") fail("{}: unknown byteorder record '{}'", name, printable(order));
  }
  const std::string code_dir = out.prefix + "/code/";
  bool torchscript = zip.find(out.prefix + "/constants.pkl") != nullptr;
  for (const ZipEntry& e : zip.entries()) torchscript = torchscript || e.name.compare(0, code_dir.size(), code_dir) == 0;
  if (torchscript) out.kind = TorchArchiveKind::TorchScript;
  return out;
}

void refuse_legacy(const ByteSource& source) {
  if (source.size() >= 2) {
    uint8_t head[2];
    source.read(0, 2, head);
    if (head[0] == 0x80 && head[1] == 0x02)
      fail("{}: legacy torch.save format (PyTorch < 1.6, a bare pickle) is not supported; re-save it with a current "
           "PyTorch",
           source.name());
  }
}

TorchArchive load_archive(std::shared_ptr<const ByteSource> source, const TorchArchiveLimits& limits) {
  const std::string name = source->name();
  refuse_legacy(*source);
  const ZipArchive zip(source, limits.zip);
  TorchArchive out;
  out.name = name;
  const ArchiveLayout layout = archive_layout(zip);
  out.prefix = layout.prefix;
  out.kind = layout.kind;
  const std::string& prefix = out.prefix;
  const bool torchscript = out.kind == TorchArchiveKind::TorchScript;

  const ZipEntry* pkl = zip.find(prefix + "/data.pkl");
  if (pkl->size > limits.max_pickle_bytes)
    fail("{}: data.pkl holds {} bytes (limit {})", name, pkl->size, limits.max_pickle_bytes);
  const std::vector<uint8_t> pickle = zip.read(*pkl, limits.max_pickle_bytes);

  ClassChecker checker(zip, prefix, limits);
  PickleContext ctx{name + ": data.pkl", &limits, torchscript,
                    [&](const std::string& module, const std::string& cls) { checker(module, cls); }};
  PickleVM vm(pickle.data(), pickle.size(), ctx);
  const uint32_t root = vm.run();

  // Every storage's entry must exist and match its declared size before any
  // view is checked against it or anything is read.
  std::vector<const ZipEntry*> entries;
  for (const StorageDecl& d : vm.storages) {
    const std::string entry_name = prefix + "/data/" + d.key;
    const ZipEntry* e = zip.find(entry_name);
    if (!e) fail("{}: storage '{}' has no entry {} in the archive", name, printable(d.key), printable(entry_name));
    const uint64_t want = d.numel * info(d.dtype).size;
    if (e->size != want)
      fail("{}: storage '{}' ({}) holds {} bytes, its declaration ({} x {}) needs {}", name, printable(d.key),
           printable(entry_name), e->size, d.numel, info(d.dtype).name, want);
    entries.push_back(e);
  }
  Converter conv(vm, ctx.where, limits, pickle.size());
  conv.convert(root, out.root, 0);
  for (size_t i : conv.used) {
    TorchStorage& s = *conv.storages[i];
    s.bytes.resize(static_cast<size_t>(entries[i]->size));
    zip.read_into(*entries[i], s.bytes.data(), s.bytes.size());
    if (s.dtype == TorchDtype::Bool)
      for (uint8_t b : s.bytes)
        if (b > 1) fail("{}: bool storage '{}' holds a byte other than 0 or 1", name, printable(s.key));
  }
  return out;
}

struct Namer {
  std::map<std::string, TorchTensorPtr>& out;
  const std::string& name;
  uint32_t max_depth;
  uint64_t name_bytes_left;  // names are built for every container and tensor: bounded

  void walk(const TorchValue& v, const std::string& prefix, uint32_t depth) {
    if (depth > max_depth) fail("{}: values nested deeper than {} levels", name, max_depth);
    switch (v.kind) {
      case TorchValue::Kind::Tensor:
        if (!out.emplace(prefix, v.tensor).second) fail("{}: two tensors are named '{}'", name, printable(prefix));
        return;
      case TorchValue::Kind::Tuple:
      case TorchValue::Kind::List:
        for (size_t i = 0; i < v.items.size(); ++i) child(v.items[i], prefix, std::to_string(i), depth);
        return;
      case TorchValue::Kind::Dict:
      case TorchValue::Kind::Object:
        for (const TorchDictEntry& e : v.entries) {
          if (e.key.kind == TorchValue::Kind::String) child(e.value, prefix, e.key.text, depth);
          else if (e.key.kind == TorchValue::Kind::Int) child(e.value, prefix, std::to_string(e.key.integer), depth);
          else fail("{}: a dict key is a {}, not a string or integer", name, to_string(e.key.kind));
        }
        return;
      default: return;
    }
  }

  void child(const TorchValue& v, const std::string& prefix, const std::string& key, uint32_t depth) {
    using K = TorchValue::Kind;
    if (v.kind != K::Tensor && v.kind != K::Tuple && v.kind != K::List && v.kind != K::Dict && v.kind != K::Object)
      return;
    const uint64_t len = prefix.size() + 1 + key.size();
    if (len > name_bytes_left) fail("{}: tensor names add up to more bytes than the limit allows", name);
    name_bytes_left -= len;
    walk(v, prefix.empty() ? key : prefix + "." + key, depth + 1);
  }
};

}  // namespace

const char* to_string(TorchDtype dtype) { return info(dtype).name; }
size_t element_size(TorchDtype dtype) { return info(dtype).size; }

const char* to_string(TorchValue::Kind kind) {
  switch (kind) {
    case TorchValue::Kind::None: return "None";
    case TorchValue::Kind::Bool: return "bool";
    case TorchValue::Kind::Int: return "int";
    case TorchValue::Kind::Float: return "float";
    case TorchValue::Kind::String: return "str";
    case TorchValue::Kind::Tuple: return "tuple";
    case TorchValue::Kind::List: return "list";
    case TorchValue::Kind::Dict: return "dict";
    case TorchValue::Kind::Tensor: return "tensor";
    case TorchValue::Kind::Object: return "object";
  }
  return "?";
}

int64_t TorchTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

bool TorchTensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;
    if (strides[d] != expected) return numel() == 0;
    expected *= shape[d];
  }
  return true;
}

std::vector<uint8_t> TorchTensor::contiguous_bytes() const {
  const size_t es = element_size(dtype);
  const int64_t n = numel();
  std::vector<uint8_t> out(static_cast<size_t>(n) * es);
  if (n == 0) return out;
  const uint8_t* base = storage->bytes.data();
  if (is_contiguous()) {
    std::memcpy(out.data(), base + static_cast<size_t>(storage_offset) * es, out.size());
    return out;
  }
  std::vector<int64_t> index(shape.size(), 0);
  int64_t at = storage_offset;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out.data() + static_cast<size_t>(i) * es, base + static_cast<size_t>(at) * es, es);
    for (size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) {
        at += strides[d];
        break;
      }
      at -= (shape[d] - 1) * strides[d];
      index[d] = 0;
    }
  }
  return out;
}

const TorchValue* TorchValue::find(std::string_view key) const {
  if (kind != Kind::Dict && kind != Kind::Object) return nullptr;
  for (const TorchDictEntry& e : entries)
    if (e.key.kind == Kind::String && e.key.text == key) return &e.value;
  return nullptr;
}

TorchArchive read_torch_archive(const std::string& path, const TorchArchiveLimits& limits) {
  return load_archive(open_file_source(path), limits);
}

TorchArchive parse_torch_archive(std::string_view bytes, const std::string& name, const TorchArchiveLimits& limits) {
  return load_archive(memory_source(bytes, name), limits);
}

TorchArchiveKind probe_torch_archive(const std::string& path, const TorchArchiveLimits& limits) {
  const std::shared_ptr<const ByteSource> source = open_file_source(path);
  refuse_legacy(*source);
  return archive_layout(ZipArchive(source, limits.zip)).kind;
}

std::map<std::string, TorchTensorPtr> torch_named_tensors(const TorchValue& value, const std::string& name,
                                                          const TorchArchiveLimits& limits) {
  std::map<std::string, TorchTensorPtr> out;
  Namer{out, name, limits.max_depth + 1, limits.max_string_bytes}.walk(value, "", 0);
  uint64_t view_bytes = 0, storage_bytes = 0;
  std::unordered_set<const TorchStorage*> seen;
  for (const auto& [key, t] : out) {
    view_bytes += t->nbytes();
    if (seen.insert(t->storage.get()).second) storage_bytes += t->storage->numel * element_size(t->storage->dtype);
  }
  if (view_bytes > limits.max_view_amplification * storage_bytes + (1u << 20))
    fail("{}: the named tensors address {} bytes, far more than their storages hold ({} bytes; limit x{})", name,
         view_bytes, storage_bytes, limits.max_view_amplification);
  return out;
}

}  // namespace semcodec
