// Reading torch.save zip archives. LibTorch's own unpickler (torch::pickle_load) turns
// collections.OrderedDict into None, so a state dict as state_dict() returns it cannot be
// read with it; this file holds a small unpickler for the opcodes pickle protocols 2-4
// produce, with tensors rebuilt from the archive's storages (torch._utils._rebuild_tensor_v2).
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/weights.hpp"

namespace gf::model {
namespace {

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

// The subset of Python objects a checkpoint pickle builds. Objects of classes this reader
// does not know (argparse.Namespace, numpy scalars, ...) become kOpaque and are only an
// error if a state dict needs them.
struct PyValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kOpaque };
  Kind kind = Kind::kNone;
  int64_t integer = 0;
  double real = 0;
  std::string text;  // string value, or "module.name" of a global / an opaque object's class
  std::vector<PyRef> items;
  std::vector<std::pair<PyRef, PyRef>> entries;
  at::Tensor tensor;
};

PyRef make(PyValue::Kind kind) {
  auto v = std::make_shared<PyValue>();
  v->kind = kind;
  return v;
}

at::ScalarType storage_dtype(const std::string& global, const std::string& where) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  auto it = kTypes.find(global);
  if (it == kTypes.end()) throw std::runtime_error(where + ": unsupported storage type " + global);
  return it->second;
}

std::vector<int64_t> int_tuple(const PyRef& v, const std::string& where) {
  std::vector<int64_t> out;
  for (const auto& item : v->items) {
    if (item->kind != PyValue::Kind::kInt) throw std::runtime_error(where + ": tensor size/stride holds a non-integer");
    out.push_back(item->integer);
  }
  return out;
}

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, caffe2::serialize::PyTorchStreamReader& archive, std::string path)
      : data_(data), size_(size), archive_(archive), path_(std::move(path)) {}

  PyRef run() {
    for (;;) {
      const auto op = static_cast<unsigned char>(read_bytes(1)[0]);
      if (op == '.') {
        if (stack_.empty()) fail("STOP with an empty stack");
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path_ + ": data.pkl at byte " + std::to_string(pos_) + ": " + what);
  }

  const char* read_bytes(size_t n) {
    if (n > size_ - pos_) fail("truncated pickle");
    const char* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint64_t read_uint(size_t n) {  // little-endian
    const auto* p = reinterpret_cast<const unsigned char*>(read_bytes(n));
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }
  std::string read_line() {
    const char* start = data_ + pos_;
    const void* nl = std::memchr(start, '\n', size_ - pos_);
    if (!nl) fail("unterminated GLOBAL name");
    const size_t len = static_cast<const char*>(nl) - start;
    pos_ += len + 1;
    return std::string(start, len);
  }

  PyRef pop() {
    if (stack_.empty()) fail("pop from an empty stack");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<PyRef> pop_to_mark() {
    if (marks_.empty()) fail("no MARK");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  PyRef& top() {
    if (stack_.empty()) fail("empty stack");
    return stack_.back();
  }
  void push_string(size_t len) {
    auto v = make(PyValue::Kind::kString);
    v->text.assign(read_bytes(len), len);
    stack_.push_back(v);
  }
  void push_int(int64_t value) {
    auto v = make(PyValue::Kind::kInt);
    v->integer = value;
    stack_.push_back(v);
  }
  void push_tuple(std::vector<PyRef> items) {
    auto v = make(PyValue::Kind::kTuple);
    v->items = std::move(items);
    stack_.push_back(v);
  }
  void set_items(const PyRef& dict, const std::vector<PyRef>& kv) {
    if (dict->kind != PyValue::Kind::kDict) return;  // items of an opaque object are not needed
    for (size_t i = 0; i + 1 < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
  }
  void memo_put(size_t index) { memo_[index] = top(); }
  void memo_get(size_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo key " + std::to_string(index) + " not found");
    stack_.push_back(it->second);
  }

  void step(unsigned char op) {
    using K = PyValue::Kind;
    switch (op) {
      case 0x80: read_bytes(1); break;        // PROTO
      case 0x95: read_bytes(8); break;        // FRAME
      case '(': marks_.push_back(stack_.size()); break;
      case 'N': stack_.push_back(make(K::kNone)); break;
      case 0x88: case 0x89: {                 // NEWTRUE, NEWFALSE
        auto v = make(K::kBool);
        v->integer = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'J': push_int(static_cast<int32_t>(read_uint(4))); break;  // BININT
      case 'K': push_int(static_cast<int64_t>(read_uint(1))); break;  // BININT1
      case 'M': push_int(static_cast<int64_t>(read_uint(2))); break;  // BININT2
      case 0x8a: {                                                    // LONG1
        const size_t n = read_uint(1);
        if (n > 8) fail("integer wider than 64 bits");
        uint64_t raw = n ? read_uint(n) : 0;
        if (n > 0 && n < 8 && (raw >> (8 * n - 1)) & 1) raw |= ~uint64_t{0} << (8 * n);  // sign-extend
        push_int(static_cast<int64_t>(raw));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const auto* p = reinterpret_cast<const unsigned char*>(read_bytes(8));
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        auto v = make(K::kFloat);
        std::memcpy(&v->real, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'X': case 'T': case 'B': push_string(read_uint(4)); break;  // BINUNICODE, BINSTRING, BINBYTES
      case 0x8c: case 'U': case 'C': push_string(read_uint(1)); break;  // SHORT_BINUNICODE/STRING/BYTES
      case 0x8d: case 0x8e: push_string(read_uint(8)); break;          // BINUNICODE8, BINBYTES8
      case ')': push_tuple({}); break;
      case 't': push_tuple(pop_to_mark()); break;
      case 0x85: { auto a = pop(); push_tuple({a}); break; }
      case 0x86: { auto b = pop(), a = pop(); push_tuple({a, b}); break; }
      case 0x87: { auto c = pop(), b = pop(), a = pop(); push_tuple({a, b, c}); break; }
      case ']': case 0x8f: stack_.push_back(make(K::kList)); break;  // EMPTY_LIST, EMPTY_SET
      case 'l': { auto v = make(K::kList); v->items = pop_to_mark(); stack_.push_back(v); break; }
      case 'a': { auto item = pop(); top()->items.push_back(item); break; }
      case 'e': case 0x90: {  // APPENDS, ADDITEMS
        auto items = pop_to_mark();
        auto& list = top()->items;
        list.insert(list.end(), items.begin(), items.end());
        break;
      }
      case 0x91: { auto v = make(K::kList); v->items = pop_to_mark(); stack_.push_back(v); break; }  // FROZENSET
      case '}': stack_.push_back(make(K::kDict)); break;
      case 'd': { auto v = make(K::kDict); set_items(v, pop_to_mark()); stack_.push_back(v); break; }
      case 's': { auto value = pop(), key = pop(); set_items(top(), {key, value}); break; }
      case 'u': { auto kv = pop_to_mark(); set_items(top(), kv); break; }
      case 'q': memo_put(read_uint(1)); break;  // BINPUT
      case 'r': memo_put(read_uint(4)); break;  // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break; // MEMOIZE
      case 'h': memo_get(read_uint(1)); break;  // BINGET
      case 'j': memo_get(read_uint(4)); break;  // LONG_BINGET
      case '0': pop(); break;                   // POP
      case '1': pop_to_mark(); break;           // POP_MARK
      case '2': stack_.push_back(top()); break; // DUP
      case 'c': {                               // GLOBAL
        auto v = make(K::kGlobal);
        const std::string module = read_line();
        v->text = module + "." + read_line();
        stack_.push_back(v);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop(), module = pop();
        auto v = make(K::kGlobal);
        v->text = module->text + "." + name->text;
        stack_.push_back(v);
        break;
      }
      case 'Q': stack_.push_back(persistent_load(pop())); break;  // BINPERSID
      case 'R': { auto args = pop(), callable = pop(); stack_.push_back(reduce(callable, args)); break; }
      case 0x81: { pop(); auto cls = pop(); auto v = make(K::kOpaque); v->text = cls->text; stack_.push_back(v); break; }
      case 0x92: { pop(); pop(); auto cls = pop(); auto v = make(K::kOpaque); v->text = cls->text; stack_.push_back(v); break; }
      case 'b': pop(); break;  // BUILD: instance state (OrderedDict._metadata, object __dict__) is not needed
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex);
      }
    }
  }

  // ('storage', storage_type, key, location, numel) -> the whole storage as a 1-D tensor.
  PyRef persistent_load(const PyRef& pid) {
    if (pid->kind != PyValue::Kind::kTuple || pid->items.size() < 5 || pid->items[0]->text != "storage")
      fail("persistent id is not a ('storage', type, key, location, numel) tuple");
    const std::string& key = pid->items[2]->text;
    auto cached = storages_.find(key);
    if (cached == storages_.end()) {
      const auto dtype = storage_dtype(pid->items[1]->text, path_);
      const int64_t numel = pid->items[4]->integer;
      const std::string record = "data/" + key;
      if (!archive_.hasRecord(record)) fail("storage record " + record + " is missing from the archive");
      auto [ptr, bytes] = archive_.getRecord(record);
      const size_t needed = static_cast<size_t>(numel) * c10::elementSize(dtype);
      if (bytes < needed)
        fail("storage " + record + ": found " + std::to_string(bytes) + " bytes, expected " + std::to_string(needed));
      auto storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
      std::memcpy(storage.data_ptr(), ptr.get(), needed);
      cached = storages_.emplace(key, storage).first;
    }
    auto v = make(PyValue::Kind::kStorage);
    v->tensor = cached->second;
    return v;
  }

  PyRef reduce(const PyRef& callable, const PyRef& args) {
    const std::string& name = callable->text;
    const auto& a = args->items;
    if (name == "collections.OrderedDict") return make(PyValue::Kind::kDict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != PyValue::Kind::kStorage) fail(name + ": unexpected arguments");
      auto v = make(PyValue::Kind::kTensor);
      v->tensor = a[0]->tensor.as_strided(int_tuple(a[2], path_), int_tuple(a[3], path_), a[1]->integer).contiguous();
      return v;
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (a.empty() || a[0]->kind != PyValue::Kind::kTensor) fail(name + ": unexpected arguments");
      return a[0];
    }
    auto v = make(PyValue::Kind::kOpaque);
    v->text = name;
    return v;
  }

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  caffe2::serialize::PyTorchStreamReader& archive_;
  std::string path_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::map<size_t, PyRef> memo_;
  std::map<std::string, at::Tensor> storages_;
};

std::string value_kind(const PyRef& v) {
  switch (v->kind) {
    case PyValue::Kind::kDict: return "dict";
    case PyValue::Kind::kTensor: return "tensor";
    case PyValue::Kind::kOpaque: return v->text;
    default: return "non-tensor value";
  }
}

const PyRef* dict_get(const PyRef& dict, const std::string& key) {
  for (const auto& [k, v] : dict->entries)
    if (k->kind == PyValue::Kind::kString && k->text == key) return &v;
  return nullptr;
}

// The state dict inside `root`: root itself when every value is a tensor, else the dict
// under "model" or "state_dict" (timm's checkpoint_filter_fn unwraps the same keys).
StateDict extract_state_dict(const PyRef& root, const std::string& path) {
  if (root->kind != PyValue::Kind::kDict)
    throw std::runtime_error(path + ": found a pickled " + value_kind(root) + ", expected a dict of tensors (a state dict)");
  for (const char* key : {"model", "state_dict"}) {
    const PyRef* inner = dict_get(root, key);
    if (inner && (*inner)->kind == PyValue::Kind::kDict) return extract_state_dict(*inner, path + "[" + key + "]");
  }
  StateDict state;
  for (const auto& [k, v] : root->entries) {
    const std::string name = k->kind == PyValue::Kind::kString ? k->text : "<non-string key>";
    if (v->kind != PyValue::Kind::kTensor)
      throw std::runtime_error(path + ": key \"" + name + "\" holds a " + value_kind(v) +
                               ", expected a tensor (a state dict, or a dict with it under \"model\" or \"state_dict\")");
    // DataParallel / DistributedDataParallel prefix, stripped as timm's clean_state_dict does.
    state.emplace_back(name.rfind("module.", 0) == 0 ? name.substr(7) : name, v->tensor);
  }
  return state;
}

}  // namespace

StateDict read_torch_state_dict(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> archive;
  try {
    archive = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable torch.save zip archive (files from torch < 1.6's legacy format "
                             "must be re-saved): " + e.what_without_backtrace());
  }
  if (!archive->hasRecord("data.pkl")) throw std::runtime_error(path + ": torch.save archive has no data.pkl record");
  auto [pickle, size] = archive->getRecord("data.pkl");
  Unpickler unpickler(static_cast<const char*>(pickle.get()), size, *archive, path);
  return extract_state_dict(unpickler.run(), path);
}

}  // namespace gf::model
