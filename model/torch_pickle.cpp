// Reading torch.save zip archives. LibTorch's own unpickler (torch::pickle_load) turns
// collections.OrderedDict into None, so a state dict as state_dict() returns it cannot be
// read with it; this file holds a small unpickler for the opcodes pickle protocols 2-4
// produce, with tensors rebuilt from the archive's storages (torch._utils._rebuild_tensor_v2).
//
// Checkpoints come from strangers, so nothing in one is trusted before it is checked:
// - data.pkl's declared size is checked against kMaxPickleBytes before it is inflated, and at
//   most kMaxPickleOps opcodes run: together they bound the memory the pickle's values take;
// - values live in an arena and point at each other with plain pointers: freeing them never
//   recurses, and a reference cycle (d["model"] = d) is refused where the state dict is looked for;
// - containers nest at most kMaxNesting deep; the state dict is unwrapped at most kMaxUnwrap times;
// - every pop is checked against the stack and the innermost MARK, as CPython's _pickle does;
// - tensors stay descriptions (storage, offset, size, stride) until a state-dict key needs one:
//   then sizes, strides and offset are checked for negative values, overflow and the bounds of
//   the storage, and the storage's record against the archive, before anything is allocated.
//   These errors name the file and the key. A tensor stays a view of its storage (storages
//   total at most the file's size) and repeats no element.
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <deque>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/printable.hpp"
#include "model/weights.hpp"

namespace gf::model {
namespace {

// The pickle of a checkpoint holds names and small values only (tensors are separate records):
// a ViT-L training checkpoint with its AdamW state has a 115 KB one.
constexpr uint64_t kMaxPickleBytes = uint64_t{64} << 20;
// Each opcode adds at most one value (~130 bytes) or memo entry: a few hundred MiB at most;
// that ViT-L checkpoint runs 41,514.
constexpr int64_t kMaxPickleOps = int64_t{1} << 21;
// Python's own default recursion limit; checkpoints nest a handful of levels.
constexpr int64_t kMaxNesting = 1000;
// {"model": state_dict} or {"state_dict": ...}, nested a few times at most by training scripts.
constexpr int kMaxUnwrap = 8;

struct PyValue;
using PyRef = PyValue*;  // owned by the Unpickler's arena

// The subset of Python objects a checkpoint pickle builds. Objects of classes this reader
// does not know (argparse.Namespace, numpy scalars, ...) become kOpaque and are only an
// error if a state dict needs them.
struct PyValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor, kOpaque };
  Kind kind = Kind::kNone;
  int64_t integer = 0;  // int, bool; kStorage: element count
  double real = 0;
  std::string text;  // string value, "module.name" of a global / an opaque object's class; kStorage: record key
  at::ScalarType dtype = at::kFloat;  // kStorage
  std::vector<PyRef> items;           // tuple/list items; kTensor: storage, offset, size tuple, stride tuple
  std::vector<std::pair<PyRef, PyRef>> entries;
  int64_t depth = 1;  // 1 for a scalar, 1 + its deepest item for a container
};

at::ScalarType storage_dtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong}, {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  auto it = kTypes.find(global);
  return it == kTypes.end() ? at::ScalarType::Undefined : it->second;
}

bool is_int_tuple(const PyValue& v) {
  if (v.kind != PyValue::Kind::kTuple) return false;
  for (const auto& item : v.items)
    if (item->kind != PyValue::Kind::kInt) return false;
  return true;
}

std::vector<int64_t> ints(const PyValue& tuple) {
  std::vector<int64_t> out;
  for (const auto& item : tuple.items) out.push_back(item->integer);
  return out;
}

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, std::string path) : data_(data), size_(size), path_(std::move(path)) {}

  // The pickled object; it lives as long as the Unpickler.
  PyRef run() {
    for (int64_t ops = 0;; ++ops) {
      if (ops == kMaxPickleOps)
        fail("found more than " + std::to_string(kMaxPickleOps) + " opcodes, expected a checkpoint's pickle");
      const auto op = static_cast<unsigned char>(read_bytes(1)[0]);
      if (op == '.') return top();  // STOP
      step(op);
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path_ + ": data.pkl at byte " + std::to_string(pos_) + ": " + what);
  }

  const char* read_bytes(uint64_t n) {
    if (n > size_ - pos_) fail("truncated pickle (" + std::to_string(n) + " more bytes expected)");
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

  PyRef make(PyValue::Kind kind) {
    PyValue& v = arena_.emplace_back();
    v.kind = kind;
    return &v;
  }
  // Nesting depth of `container` once it holds `item`.
  void nest(const PyRef& container, const PyRef& item) {
    container->depth = std::max(container->depth, item->depth + 1);
    if (container->depth > kMaxNesting)
      fail("containers nested deeper than " + std::to_string(kMaxNesting) + " levels, expected a checkpoint's few");
  }
  PyRef make_sequence(PyValue::Kind kind, std::vector<PyRef> items) {
    auto v = make(kind);
    for (const auto& item : items) nest(v, item);
    v->items = std::move(items);
    return v;
  }

  // Values above the innermost MARK: pops never reach below it (CPython's "stack underflow").
  size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  PyRef& top() {
    if (stack_.size() <= fence()) fail(marks_.empty() ? "pop from an empty stack" : "pop below the innermost MARK");
    return stack_.back();
  }
  PyRef pop() {
    auto v = top();
    stack_.pop_back();
    return v;
  }
  std::vector<PyRef> pop_to_mark() {
    if (marks_.empty()) fail("found no MARK for an opcode that needs one");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  void push_string(uint64_t len) {
    const char* bytes = read_bytes(len);
    auto v = make(PyValue::Kind::kString);
    v->text.assign(bytes, len);
    stack_.push_back(v);
  }
  void push_int(int64_t value) {
    auto v = make(PyValue::Kind::kInt);
    v->integer = value;
    stack_.push_back(v);
  }
  void append(const PyRef& list, const std::vector<PyRef>& items) {
    if (list->kind != PyValue::Kind::kList) return;  // items of an opaque object are not needed
    for (const auto& item : items) nest(list, item);
    list->items.insert(list->items.end(), items.begin(), items.end());
  }
  void set_items(const PyRef& dict, const std::vector<PyRef>& kv) {
    if (dict->kind != PyValue::Kind::kDict) return;  // items of an opaque object are not needed
    if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of values, expected key/value pairs");
    for (size_t i = 0; i < kv.size(); i += 2) {
      nest(dict, kv[i]);
      nest(dict, kv[i + 1]);
      dict->entries.emplace_back(kv[i], kv[i + 1]);
    }
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo key " + std::to_string(index) + " not found");
    stack_.push_back(it->second);
  }
  const std::string& string_of(const PyRef& v, const char* what) {
    if (v->kind != PyValue::Kind::kString) fail(std::string("found a non-string ") + what + ", expected a string");
    return v->text;
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
      case ')': stack_.push_back(make(K::kTuple)); break;
      case 't': stack_.push_back(make_sequence(K::kTuple, pop_to_mark())); break;
      case 0x85: { auto a = pop(); stack_.push_back(make_sequence(K::kTuple, {a})); break; }
      case 0x86: { auto b = pop(), a = pop(); stack_.push_back(make_sequence(K::kTuple, {a, b})); break; }
      case 0x87: { auto c = pop(), b = pop(), a = pop(); stack_.push_back(make_sequence(K::kTuple, {a, b, c})); break; }
      case ']': case 0x8f: stack_.push_back(make(K::kList)); break;  // EMPTY_LIST, EMPTY_SET
      case 'l': case 0x91: stack_.push_back(make_sequence(K::kList, pop_to_mark())); break;  // LIST, FROZENSET
      case 'a': { auto item = pop(); append(top(), {item}); break; }
      case 'e': case 0x90: { auto items = pop_to_mark(); append(top(), items); break; }  // APPENDS, ADDITEMS
      case '}': stack_.push_back(make(K::kDict)); break;
      case 'd': { auto v = make(K::kDict); set_items(v, pop_to_mark()); stack_.push_back(v); break; }
      case 's': { auto value = pop(), key = pop(); set_items(top(), {key, value}); break; }
      case 'u': { auto kv = pop_to_mark(); set_items(top(), kv); break; }
      case 'q': memo_put(read_uint(1)); break;  // BINPUT
      case 'r': memo_put(read_uint(4)); break;  // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); break; // MEMOIZE
      case 'h': memo_get(read_uint(1)); break;  // BINGET
      case 'j': memo_get(read_uint(4)); break;  // LONG_BINGET
      case '0':                                 // POP: a MARK right at the top goes instead, as in CPython
        if (!marks_.empty() && marks_.back() == stack_.size()) marks_.pop_back();
        else pop();
        break;
      case '1': pop_to_mark(); break;           // POP_MARK
      case '2': { auto v = top(); stack_.push_back(v); break; }  // DUP
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
        v->text = string_of(module, "STACK_GLOBAL module");
        v->text += "." + string_of(name, "STACK_GLOBAL name");
        stack_.push_back(v);
        break;
      }
      case 'Q': { auto pid = pop(); stack_.push_back(persistent_load(pid)); break; }  // BINPERSID
      case 'R': { auto args = pop(), callable = pop(); stack_.push_back(reduce(callable, args)); break; }
      case 0x81: { pop(); auto cls = pop(); auto v = make(K::kOpaque); v->text = cls->text; stack_.push_back(v); break; }
      case 0x92: { pop(); pop(); auto cls = pop(); auto v = make(K::kOpaque); v->text = cls->text; stack_.push_back(v); break; }
      case 'b': pop(); top(); break;  // BUILD: instance state (OrderedDict._metadata, object __dict__) is not needed
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex);
      }
    }
  }

  // ('storage', storage_type, key, location, numel): a storage, read from the archive only
  // when a state-dict tensor needs it.
  PyRef persistent_load(const PyRef& pid) {
    using K = PyValue::Kind;
    const auto& a = pid->items;
    if (pid->kind != K::kTuple || a.size() != 5 || a[0]->kind != K::kString || a[0]->text != "storage" ||
        a[1]->kind != K::kGlobal || a[2]->kind != K::kString || a[4]->kind != K::kInt)
      fail("found a persistent id that is not a ('storage', type, key, location, numel) tuple");
    auto v = make(K::kStorage);
    v->dtype = storage_dtype(a[1]->text);
    if (v->dtype == at::ScalarType::Undefined)
      fail("found storage type " + printable(a[1]->text) + ", expected torch.FloatStorage, HalfStorage, ... BoolStorage");
    if (a[4]->integer < 0) fail("storage " + printable(a[2]->text) + ": found " + std::to_string(a[4]->integer) + " elements, expected >= 0");
    v->text = a[2]->text;
    v->integer = a[4]->integer;
    return v;
  }

  PyRef reduce(const PyRef& callable, const PyRef& args) {
    using K = PyValue::Kind;
    const std::string& name = callable->text;
    if (args->kind != K::kTuple) fail("REDUCE of " + printable(name) + ": found arguments that are not a tuple");
    const auto& a = args->items;
    if (callable->kind == K::kGlobal && name == "collections.OrderedDict") return make(K::kDict);
    if (callable->kind == K::kGlobal && (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor")) {
      if (a.size() < 4 || a[0]->kind != K::kStorage || a[1]->kind != K::kInt || !is_int_tuple(*a[2]) ||
          !is_int_tuple(*a[3]) || a[2]->items.size() != a[3]->items.size())
        fail(name + ": found unexpected arguments, expected (storage, offset, size, stride, ...) with one stride per dimension");
      return make_sequence(K::kTensor, {a[0], a[1], a[2], a[3]});
    }
    if (callable->kind == K::kGlobal && name == "torch._utils._rebuild_parameter") {
      if (a.empty() || a[0]->kind != K::kTensor) fail(name + ": found unexpected arguments, expected (tensor, ...)");
      return a[0];
    }
    auto v = make(K::kOpaque);
    v->text = name;
    return v;
  }

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string path_;
  std::deque<PyValue> arena_;  // every value; a deque keeps their addresses as it grows
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyRef> memo_;
};

// Rebuilds state-dict tensors from their descriptions, reading each storage record once.
class TensorLoader {
 public:
  TensorLoader(caffe2::serialize::PyTorchStreamReader& archive, std::string path, uint64_t file_size)
      : archive_(archive), path_(std::move(path)), file_size_(file_size) {}

  at::Tensor load(const PyValue& tensor, const std::string& key) {
    const std::string where = path_ + ": key \"" + printable(key) + "\": ";
    const PyValue& storage = *tensor.items[0];
    const int64_t offset = tensor.items[1]->integer;
    const std::vector<int64_t> sizes = ints(*tensor.items[2]), strides = ints(*tensor.items[3]);
    const std::string layout = "size " + c10::str(at::IntArrayRef(sizes)) + ", stride " +
                               c10::str(at::IntArrayRef(strides)) + ", offset " + std::to_string(offset);
    auto refuse = [&](const std::string& what) { throw std::runtime_error(where + layout + ": " + what); };
    if (offset < 0) refuse("found a negative storage offset, expected >= 0");
    int64_t numel = 1, last = offset;  // last: the highest element index the tensor reads
    for (size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] < 0) refuse("found a negative size, expected sizes >= 0");
      if (strides[d] < 0) refuse("found a negative stride, expected strides >= 0 (as torch.save writes)");
      int64_t step = 0;
      if (__builtin_mul_overflow(numel, sizes[d], &numel) ||
          (sizes[d] > 0 && (__builtin_mul_overflow(sizes[d] - 1, strides[d], &step) || __builtin_add_overflow(last, step, &last))))
        refuse("found a size whose element count or extent overflows 64 bits");
    }
    if (numel > 0 ? last >= storage.integer : offset > storage.integer)
      refuse("found storage data/" + printable(storage.text) + " of " + std::to_string(storage.integer) +
             " elements, expected at least " + std::to_string(numel > 0 ? last + 1 : offset) + " (storage smaller than the tensor)");
    // A view reading elements more than once (a stride 0) would make dense copies larger than
    // the file; no state dict holds one.
    if (numel > storage.integer)
      refuse("found " + std::to_string(numel) + " elements over a storage of " + std::to_string(storage.integer) +
             ", expected at most the storage's (a view that repeats elements)");
    // A view of the storage, as torch.load gives: no copy is made here, so many keys viewing
    // one storage cost no memory beyond the file.
    return this->storage(storage, where).as_strided(sizes, strides, offset);
  }

 private:
  const at::Tensor& storage(const PyValue& storage, const std::string& where) {
    auto cached = storages_.find(storage.text);
    if (cached != storages_.end()) {
      if (cached->second.scalar_type() != storage.dtype || cached->second.numel() != storage.integer)
        throw std::runtime_error(where + "storage data/" + printable(storage.text) +
                                 " is declared twice with different types or sizes, expected one declaration");
      return cached->second;
    }
    const std::string record = "data/" + storage.text;
    if (!archive_.hasRecord(record))
      throw std::runtime_error(where + "storage record " + printable(record) + " is missing from the archive");
    const uint64_t element = c10::elementSize(storage.dtype);
    const auto numel = static_cast<uint64_t>(storage.integer);
    const uint64_t record_bytes = archive_.getRecordSize(record);
    if (numel > std::numeric_limits<uint64_t>::max() / element || record_bytes != numel * element)
      throw std::runtime_error(where + "storage " + printable(record) + ": found a record of " + std::to_string(record_bytes) +
                               " bytes, expected " + std::to_string(numel) + " " + c10::toString(storage.dtype) +
                               " elements of " + std::to_string(element) + " bytes");
    // torch.save stores storages uncompressed, one record each: together they fit in the file.
    // This refuses zip entries that overlap or inflate before their memory is taken.
    if (record_bytes > file_size_ - std::min(file_size_, loaded_bytes_))
      throw std::runtime_error(where + "storage " + printable(record) + ": found " + std::to_string(record_bytes) + " bytes (" +
                               std::to_string(loaded_bytes_ + record_bytes) + " with the storages read before it), expected at most "
                               "the archive's " + std::to_string(file_size_) + " bytes (overlapping or compressed zip entries)");
    loaded_bytes_ += record_bytes;
    auto tensor = at::empty({storage.integer}, at::TensorOptions().dtype(storage.dtype));
    try {
      if (record_bytes > 0) archive_.getRecord(record, tensor.data_ptr(), record_bytes);
    } catch (const c10::Error& e) {
      throw std::runtime_error(where + "storage " + printable(record) + ": cannot be read (" + e.what_without_backtrace() + ")");
    }
    return storages_.emplace(storage.text, std::move(tensor)).first->second;
  }

  caffe2::serialize::PyTorchStreamReader& archive_;
  std::string path_;
  uint64_t file_size_;
  uint64_t loaded_bytes_ = 0;
  std::map<std::string, at::Tensor> storages_;
};

std::string value_kind(const PyValue& v) {
  switch (v.kind) {
    case PyValue::Kind::kDict: return "dict";
    case PyValue::Kind::kTensor: return "tensor";
    case PyValue::Kind::kOpaque: return printable(v.text);
    default: return "non-tensor value";
  }
}

const PyRef* dict_get(const PyValue& dict, const std::string& key) {
  for (const auto& [k, v] : dict.entries)
    if (k->kind == PyValue::Kind::kString && k->text == key) return &v;
  return nullptr;
}

// The state dict inside `root`: root itself when every value is a tensor, else the dict
// under "model" or "state_dict" (timm's checkpoint_filter_fn unwraps the same keys).
StateDict extract_state_dict(PyRef root, TensorLoader& loader, const std::string& path) {
  std::string where = path;
  std::set<PyRef> seen;
  for (int unwrapped = 0;; ++unwrapped) {
    if (root->kind != PyValue::Kind::kDict)
      throw std::runtime_error(where + ": found a pickled " + value_kind(*root) + ", expected a dict of tensors (a state dict)");
    if (!seen.insert(root).second)
      throw std::runtime_error(where + ": found a dict that contains itself (a reference cycle), expected a state dict");
    const PyRef* inner = nullptr;
    for (const char* key : {"model", "state_dict"}) {
      inner = dict_get(*root, key);
      if (inner && (*inner)->kind == PyValue::Kind::kDict) {
        where += std::string("[") + key + "]";
        break;
      }
      inner = nullptr;
    }
    if (!inner) break;
    if (unwrapped == kMaxUnwrap)
      throw std::runtime_error(where + ": found state dicts nested under \"model\"/\"state_dict\" more than " +
                               std::to_string(kMaxUnwrap) + " levels deep, expected a few");
    root = *inner;
  }
  StateDict state;
  std::set<std::string> names;
  for (const auto& [k, v] : root->entries) {
    if (k->kind != PyValue::Kind::kString)
      throw std::runtime_error(where + ": found a key that is not a string, expected tensor names");
    const std::string& name = k->text;
    if (name.size() > kMaxTensorNameBytes)
      throw std::runtime_error(where + ": key \"" + printable(name.substr(0, 40)) + "..\": found a tensor name of " +
                               std::to_string(name.size()) + " bytes, expected at most " + std::to_string(kMaxTensorNameBytes));
    if (!names.insert(name).second)
      throw std::runtime_error(where + ": key \"" + printable(name) + "\" appears twice, expected each name once");
    if (v->kind != PyValue::Kind::kTensor)
      throw std::runtime_error(where + ": key \"" + printable(name) + "\" holds a " + value_kind(*v) +
                               ", expected a tensor (a state dict, or a dict with it under \"model\" or \"state_dict\")");
    // DataParallel / DistributedDataParallel prefix, stripped as timm's clean_state_dict does.
    state.emplace_back(name.rfind("module.", 0) == 0 ? name.substr(7) : name, loader.load(*v, name));
  }
  return state;
}

}  // namespace

StateDict read_torch_state_dict(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw std::runtime_error(path + ": not a regular file, expected a .pth file");
  const uint64_t file_size = std::filesystem::file_size(path);
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> archive;
  try {
    archive = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": not a readable torch.save zip archive (files from torch < 1.6's legacy format "
                             "must be re-saved): " + e.what_without_backtrace());
  }
  if (!archive->hasRecord("data.pkl")) throw std::runtime_error(path + ": torch.save archive has no data.pkl record");
  const uint64_t pickle_size = archive->getRecordSize("data.pkl");
  if (pickle_size > kMaxPickleBytes)
    throw std::runtime_error(path + ": data.pkl: found " + std::to_string(pickle_size) + " bytes (inflated), expected at most " +
                             std::to_string(kMaxPickleBytes >> 20) + " MiB (a checkpoint's pickle holds no tensor data)");
  std::vector<char> pickle(pickle_size);
  try {
    if (pickle_size > 0) archive->getRecord("data.pkl", pickle.data(), pickle_size);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": data.pkl: cannot be read (" + e.what_without_backtrace() + ")");
  }
  Unpickler unpickler(pickle.data(), pickle.size(), path);
  TensorLoader loader(*archive, path, file_size);
  try {
    return extract_state_dict(unpickler.run(), loader, path);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": cannot be read (" + e.what_without_backtrace() + ")");
  }
}

}  // namespace gf::model
