// The field protocol of typed configs. A config struct lists its fields once
// in a member template
//   template <class V> void visit(V& v)
// that calls, for every field,
//   v.field("key", member, "help text", Limits)  for scalars (bool, int64_t, double, std::string)
//   v.section("key", sub_struct)                for nested structs (which have their own visit)
// The YAML reader, the resolved-config writer, JSON, `--set` overrides and the
// documentation are visitors walking that list (util/config.h).
//
// OptionGroup holds a struct whose type is only known at run time (each
// compression method's own options, models/method_registry.h) and walks its
// fields with any visitor; such structs use field() only.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

namespace semcodec {

// Limits: numeric range and/or allowed string values.
struct Limits {
  double min = -1e300, max = 1e300;
  std::vector<std::string> choices;  // for strings; empty = any
  // A key added after config hashes were published (the hashes stored with
  // checkpoints and resolved configs): left out of the canonical JSON, hence of
  // config_hash, while it holds its default, so those hashes stay valid.
  bool hashed_when_default = true;
  static Limits range(double lo, double hi) { Limits l; l.min = lo; l.max = hi; return l; }
  static Limits at_least(double lo) { Limits l; l.min = lo; return l; }
  static Limits one_of(std::vector<std::string> c) { Limits l; l.choices = std::move(c); return l; }
  Limits added_later() const { Limits l = *this; l.hashed_when_default = false; return l; }
};

// The visit() protocol's field() as virtual functions.
class FieldVisitor {
 public:
  virtual ~FieldVisitor() = default;
  virtual void field(const char* key, bool& member, const char* help, const Limits& limits) = 0;
  virtual void field(const char* key, int64_t& member, const char* help, const Limits& limits) = 0;
  virtual void field(const char* key, double& member, const char* help, const Limits& limits) = 0;
  virtual void field(const char* key, std::string& member, const char* help, const Limits& limits) = 0;
};

// Any visitor V seen through FieldVisitor.
template <class V>
class FieldVisitorFor final : public FieldVisitor {
 public:
  explicit FieldVisitorFor(V& v) : v_(v) {}
  void field(const char* k, bool& m, const char* h, const Limits& l) override { v_.field(k, m, h, l); }
  void field(const char* k, int64_t& m, const char* h, const Limits& l) override { v_.field(k, m, h, l); }
  void field(const char* k, double& m, const char* h, const Limits& l) override { v_.field(k, m, h, l); }
  void field(const char* k, std::string& m, const char* h, const Limits& l) override { v_.field(k, m, h, l); }

 private:
  V& v_;
};

// A config struct behind a virtual interface; its fields join the visitor of
// the struct that holds the group (no section of their own).
class OptionGroup {
 public:
  virtual ~OptionGroup() = default;
  virtual std::unique_ptr<OptionGroup> clone() const = 0;
  virtual const std::type_info& type() const = 0;
  virtual void visit_fields(FieldVisitor& v) = 0;
  template <class V>
  void visit(V& v) {
    FieldVisitorFor<V> fields(v);
    visit_fields(fields);
  }
};

template <class T>
class OptionGroupOf final : public OptionGroup {
 public:
  std::unique_ptr<OptionGroup> clone() const override { return std::make_unique<OptionGroupOf<T>>(*this); }
  const std::type_info& type() const override { return typeid(T); }
  void visit_fields(FieldVisitor& v) override { value.visit(v); }
  T value{};
};

// Default-valued options of type T, as an OptionGroup.
template <class T>
std::unique_ptr<OptionGroup> make_option_group() {
  return std::make_unique<OptionGroupOf<T>>();
}

// Option groups by type, each type once, copied by value.
class OptionGroups {
 public:
  OptionGroups() = default;
  OptionGroups(const OptionGroups& o) { *this = o; }
  OptionGroups& operator=(const OptionGroups& o) {
    if (this == &o) return *this;
    groups_.clear();
    for (const auto& g : o.groups_) groups_.push_back(g->clone());
    return *this;
  }
  OptionGroups(OptionGroups&&) = default;
  OptionGroups& operator=(OptionGroups&&) = default;

  // Keeps `group` unless a group of its type is already held.
  void add(std::unique_ptr<OptionGroup> group) {
    if (!find(group->type())) groups_.push_back(std::move(group));
  }
  // The held options of type T, or nullptr.
  template <class T>
  T* get() {
    OptionGroup* g = find(typeid(T));
    return g ? &static_cast<OptionGroupOf<T>*>(g)->value : nullptr;
  }
  template <class T>
  const T* get() const {
    return const_cast<OptionGroups*>(this)->get<T>();
  }
  template <class V>
  void visit(V& v) {
    for (auto& g : groups_) g->visit(v);
  }

 private:
  OptionGroup* find(const std::type_info& type) const {
    for (const auto& g : groups_)
      if (g->type() == type) return g.get();
    return nullptr;
  }
  std::vector<std::unique_ptr<OptionGroup>> groups_;
};

}  // namespace semcodec
