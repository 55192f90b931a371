// Hostile weight files: each is built here (bytes written in C++, or torch.save through the
// venv's python for what PyTorch itself can write) and must be refused with one line naming
// the file and the problem; never a crash, a hang or an allocation the file does not back.
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "model/printable.hpp"
#include "model/weights.hpp"
#include "model/weights_tools.hpp"
#include "tests/support/environment.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/temp_dir.hpp"

namespace gf::model {
namespace {

using gf::test::error_of;
using namespace std::string_literals;  // literals holding \0

struct TempDir : gf::test::TempDir {
  TempDir() : gf::test::TempDir("hostile-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())) {}
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string le(uint64_t value, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

// ---- pickles, written opcode by opcode (protocol 2, as torch.save writes) ----

struct Pickle {
  std::string bytes = "\x80\x02";
  Pickle& raw(const std::string& b) { bytes += b; return *this; }
  Pickle& str(const std::string& s) { bytes += 'X' + le(s.size(), 4) + s; return *this; }
  Pickle& global(const std::string& module, const std::string& name) { bytes += 'c' + module + '\n' + name + '\n'; return *this; }
  Pickle& integer(int64_t v) { bytes += '\x8a' + std::string(1, '\x08') + le(static_cast<uint64_t>(v), 8); return *this; }  // LONG1
  Pickle& ints(const std::vector<int64_t>& values) {
    bytes += '(';
    for (int64_t v : values) integer(v);
    bytes += 't';
    return *this;
  }
  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& key, int64_t numel, int64_t offset, const std::vector<int64_t>& size,
                 const std::vector<int64_t>& stride, const std::string& storage_type = "FloatStorage") {
    global("torch._utils", "_rebuild_tensor_v2").raw("(");
    raw("(").str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).raw("tQ");
    integer(offset).ints(size).ints(stride).raw("\x89").global("collections", "OrderedDict").raw(")R");
    return raw("tR");
  }
  std::string stop() const { return bytes + "."; }
};

// {name: tensor over storage "0"} as a pickle.
std::string one_tensor_dict(int64_t numel, int64_t offset, const std::vector<int64_t>& size,
                            const std::vector<int64_t>& stride, const std::string& name = "w") {
  return Pickle().raw("}(").str(name).tensor("0", numel, offset, size, stride).raw("u").stop();
}

struct Record {
  std::string name, bytes;
  bool compress = false;
};
// A torch.save-layout zip archive (PyTorch's own writer) holding `records`.
void write_archive(const std::string& path, const std::vector<Record>& records) {
  caffe2::serialize::PyTorchStreamWriter writer(path);
  for (const auto& r : records) writer.writeRecord(r.name, r.bytes.data(), r.bytes.size(), r.compress);
  writer.writeEndOfFile();
}
void write_pth(const std::string& path, const std::string& pickle, const std::string& storage = std::string(16, '\0')) {
  write_archive(path, {{"data.pkl", pickle}, {"data/0", storage}});
}

// Sets the uncompressed size the central directory declares for the record ending in `suffix`
// (a compressed one: miniz checks stored records' sizes against the file itself).
void declare_size(const std::string& path, const std::string& suffix, uint32_t size) {
  std::string bytes = read_file(path);
  for (size_t at = bytes.find("PK\x01\x02"); at != std::string::npos; at = bytes.find("PK\x01\x02", at + 4)) {
    const auto u16 = [&](size_t o) { return static_cast<unsigned char>(bytes[o]) | static_cast<unsigned char>(bytes[o + 1]) << 8; };
    const std::string name = bytes.substr(at + 46, u16(at + 28));
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      bytes.replace(at + 24, 4, le(size, 4));
      write_file(path, bytes);
      return;
    }
  }
  FAIL() << path << ": no central directory entry for " << suffix;
}

// ---- safetensors, header JSON written as text ----

void write_safetensors_raw(const std::string& path, const std::string& header, size_t data_bytes) {
  write_file(path, le(header.size(), 8) + header + std::string(data_bytes, '\0'));
}

struct Case {
  std::string name;
  std::function<void(const std::string& path)> write;
  std::string phrase;  // what the one-line error must say
};

// Each case's file is read by read_weights (the format chosen by its first bytes, as the CLI
// does): it must throw a one-line std::exception naming the file and containing `phrase`.
void expect_refused(const std::vector<Case>& cases, const std::string& extension) {
  TempDir tmp;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = tmp / (c.name + extension);
    c.write(path);
    if (::testing::Test::HasFatalFailure()) return;
    const std::string message = error_of([&] { read_weights(path); });
    EXPECT_EQ(message.rfind(path, 0), 0u) << message;
    EXPECT_NE(message.find(c.phrase), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(message.find('\x1b'), std::string::npos) << message;
  }
}

TEST(HostileWeights, WellFormedHandWrittenFilesRead) {  // the builders below make readable files
  TempDir tmp;
  at::Tensor values = at::arange(6, at::kFloat);
  write_pth(tmp / "ok.pth", one_tensor_dict(6, 1, {2, 2}, {1, 2}), std::string(static_cast<char*>(values.data_ptr()), 24));
  const auto state = read_weights(tmp / "ok.pth");
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "w");
  EXPECT_TRUE(at::equal(state[0].second, values.as_strided({2, 2}, {1, 2}, 1))) << state[0].second;
  EXPECT_EQ(state[0].second.strides(), at::IntArrayRef({1, 2}));  // a view of the storage, as torch.load gives

  write_safetensors_raw(tmp / "ok.safetensors",
                        R"({"__metadata__":{"k":"v"},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                        R"("a":{"dtype":"U8","shape":[2,4],"data_offsets":[0,8]}})", 16);
  const auto contents = read_safetensors(tmp / "ok.safetensors");
  ASSERT_EQ(contents.tensors.size(), 2u);
  EXPECT_EQ(contents.tensors[0].first, "a");
  EXPECT_EQ(contents.tensors[1].second.sizes(), at::IntArrayRef({2}));
  EXPECT_EQ(contents.metadata.at("k"), "v");
}

TEST(HostileWeights, TorchSaveArchivesAreRefusedWithOneLine) {
  const auto pth = [](std::string pickle, std::string storage = std::string(16, '\0')) {
    return [pickle, storage](const std::string& path) { write_pth(path, pickle, storage); };
  };
  std::string deep_tuples = Pickle().raw("N").bytes;
  for (int i = 0; i < 100000; ++i) deep_tuples += '\x85';  // TUPLE1: (((None,),),)...
  std::string deep_lists = Pickle().bytes + std::string(5000, ']') + std::string(5000, 'a');  // each appended to the one below
  std::string deep_dicts = Pickle().bytes;
  for (int i = 0; i < 2000; ++i) deep_dicts += "(X" + le(1, 4) + "k";  // {"k": {"k": ... None}}
  deep_dicts += "N" + std::string(2000, 'd');
  std::string deep_unwrap = Pickle().bytes;
  for (int i = 0; i < 10; ++i) deep_unwrap += "}(X" + le(5, 4) + "model";
  deep_unwrap += "}";
  for (int i = 0; i < 10; ++i) deep_unwrap += "u";
  std::string marks = Pickle().bytes + std::string((size_t{1} << 21) + 1, '(');
  const std::string tensor_w = Pickle().str("w").tensor("0", 4, 0, {2, 2}, {2, 1}).bytes.substr(2);

  const std::vector<Case> cases = {
      // the issue's cases
      {"self_reference", pth(Pickle().raw("}q\x00(X"s + le(5, 4) + "modelh\x00u"s).stop()), "contains itself (a reference cycle)"},
      {"self_reference_state_dict", pth(Pickle().raw("}q\x00(X"s + le(10, 4) + "state_dicth\x00u"s).stop()), "contains itself"},
      {"nested_tuples_100000", pth(deep_tuples + "."), "nested deeper than 1000 levels"},
      {"mark_underflow", pth("\x80\x02NN(00t."), "found no MARK"},
      {"mark_underflow_pop_below", pth("\x80\x02NN(0000."), "pop from an empty stack"},
      {"inflates_to_2GiB",
       [&](const std::string& path) {
         write_archive(path, {{"data.pkl", one_tensor_dict(4, 0, {4}, {1}), true}, {"data/0", std::string(16, '\0')}});
         declare_size(path, "data.pkl", 0x80000000u);
       },
       "data.pkl: found 2147483648 bytes (inflated), expected at most 64 MiB"},
      // nesting and size bounds
      {"nested_lists", pth(deep_lists + "."), "nested deeper than 1000 levels"},
      {"nested_dicts", pth(deep_dicts + "."), "nested deeper than 1000 levels"},
      {"unwrap_too_deep", pth(deep_unwrap + "."), "more than 8 levels deep"},
      {"too_many_opcodes", pth(marks + "."), "opcodes, expected a checkpoint's pickle"},
      // the stack and the MARKs
      {"pop_empty", pth("\x80\x02" "0."), "pop from an empty stack"},
      {"stop_empty", pth("\x80\x02."), "pop from an empty stack"},
      {"stop_above_mark", pth("\x80\x02N(."), "pop below the innermost MARK"},
      {"append_below_mark", pth("\x80\x02](K\x01" "a."), "pop below the innermost MARK"},
      {"append_to_mark", pth("\x80\x02](a."), "pop below the innermost MARK"},
      {"tuple3_short", pth("\x80\x02NN\x87."), "pop from an empty stack"},
      {"dup_above_mark", pth("\x80\x02N(2."), "pop below the innermost MARK"},
      {"setitem_short", pth("\x80\x02}Ns."), "pop from an empty stack"},
      {"setitems_odd", pth("\x80\x02}(NNNu."), "odd number of values"},
      {"build_short", pth("\x80\x02Nb."), "pop from an empty stack"},
      {"memo_missing", pth("\x80\x02h\x05."), "memo key 5 not found"},
      {"memo_put_empty", pth("\x80\x02q\x00."s), "pop from an empty stack"},
      {"stack_global_not_strings", pth("\x80\x02NN\x93."), "non-string STACK_GLOBAL module"},
      {"reduce_args_not_tuple", pth(Pickle().global("os", "system").raw("NR").stop()), "arguments that are not a tuple"},
      // truncation and unknown bytes
      {"empty_pickle", pth(""), "truncated pickle"},
      {"string_past_end", pth("\x80\x02X\xff\xff\xff\xff"), "truncated pickle"},
      {"string8_2_63", pth("\x80\x02\x8d" + le(uint64_t{1} << 63, 8)), "truncated pickle"},
      {"long_wider_than_64_bits", pth("\x80\x02\x8a\x09" + std::string(9, '\x01') + "."), "wider than 64 bits"},
      {"global_unterminated", pth("\x80\x02" "cos"), "unterminated GLOBAL"},
      {"unknown_opcode", pth("\x80\x02\xff."), "unsupported pickle opcode 0xff"},
      {"inst_opcode", pth("\x80\x02(ios\nsystem\n."), "unsupported pickle opcode 0x69"},
      // not a state dict
      {"root_is_list", pth("\x80\x02]."), "found a pickled non-tensor value, expected a dict"},
      {"non_string_key", pth(Pickle().raw("}(K\x01N" "u").stop()), "a key that is not a string"},
      {"duplicate_key", pth(Pickle().raw("}(").raw(tensor_w).raw(tensor_w).raw("u").stop()), "key \"w\" appears twice"},
      {"escape_in_key", pth(Pickle().raw("}(").str("\x1b[2Jx").raw("Nu").stop()), "key \"\\x1b[2Jx\" holds a non-tensor value"},
      // a name that sent `inspect`'s std::regex (one recursion per character) past the stack
      {"name_300000_bytes", pth(Pickle().raw("}(").str("blocks.1." + std::string(300000, 'x')).raw("Nu").stop()),
       "found a tensor name of 300009 bytes, expected at most 1024"},
      // persistent ids and storages
      {"persistent_id_short", pth(Pickle().raw("(").str("storage").raw("tQ.").bytes), "not a ('storage', type, key, location, numel) tuple"},
      {"storage_type_unknown", pth(Pickle().raw("}(").str("w").tensor("0", 4, 0, {4}, {1}, "ComplexFloatStorage").raw("u").stop()),
       "found storage type torch.ComplexFloatStorage"},
      {"storage_numel_negative", pth(one_tensor_dict(-4, 0, {0}, {1})), "found -4 elements, expected >= 0"},
      {"storage_record_missing", [](const std::string& path) { write_archive(path, {{"data.pkl", one_tensor_dict(4, 0, {4}, {1})}}); },
       "storage record data/0 is missing from the archive"},
      {"storage_record_short", pth(one_tensor_dict(8, 0, {8}, {1})), "found a record of 16 bytes, expected 8 Float elements"},
      {"storage_numel_overflows", pth(one_tensor_dict(int64_t{1} << 62, 0, {1}, {1})), "found a record of 16 bytes"},
      {"storage_declared_1GiB",
       [](const std::string& path) {
         write_archive(path, {{"data.pkl", one_tensor_dict(int64_t{1} << 28, 0, {4}, {1})}, {"data/0", std::string(16, '\0'), true}});
         declare_size(path, "data/0", 1u << 30);
       },
       "expected at most the archive's"},
      {"storage_compressed_1MiB",
       [](const std::string& path) {
         write_archive(path, {{"data.pkl", one_tensor_dict(1 << 18, 0, {4}, {1})}, {"data/0", std::string(1 << 20, '\0'), true}});
       },
       "(overlapping or compressed zip entries)"},
      // tensor layouts
      {"rebuild_args_wrong", pth(Pickle().raw("}(").str("w").global("torch._utils", "_rebuild_tensor_v2").raw("(NNNNtRu").stop()),
       "_rebuild_tensor_v2: found unexpected arguments"},
      {"stride_count_differs", pth(one_tensor_dict(4, 0, {2, 2}, {1})), "one stride per dimension"},
      {"negative_stride", pth(one_tensor_dict(4, 3, {4}, {-1})), "key \"w\": size [4], stride [-1], offset 3: found a negative stride"},
      {"negative_size", pth(one_tensor_dict(4, 0, {-2, 2}, {2, 1})), "found a negative size"},
      {"negative_offset", pth(one_tensor_dict(4, -1, {4}, {1})), "found a negative storage offset"},
      {"size_overflows", pth(one_tensor_dict(4, 0, {int64_t{1} << 62, int64_t{1} << 62}, {0, 0})), "overflows 64 bits"},
      {"extent_overflows", pth(one_tensor_dict(4, 0, {3}, {int64_t{1} << 62})), "overflows 64 bits"},
      {"storage_smaller_than_tensor", pth(one_tensor_dict(4, 0, {3, 3}, {3, 1})),
       "found storage data/0 of 4 elements, expected at least 9 (storage smaller than the tensor)"},
      {"stride_0_view", pth(one_tensor_dict(4, 0, {int64_t{1} << 40}, {0})), "found 1099511627776 elements over a storage of 4"},
      {"self_overlapping_view", pth(one_tensor_dict(4, 0, {3, 2}, {1, 1})), "found 6 elements over a storage of 4"},
      {"offset_past_storage", pth(one_tensor_dict(4, 4, {1}, {1})), "expected at least 5"},
      {"empty_tensor_offset_past_storage", pth(one_tensor_dict(4, 9, {0}, {1})), "expected at least 9"},
      // the archive itself
      {"not_a_zip", [](const std::string& path) { write_file(path, "PK\x03\x04 not really a zip"); }, "not a readable torch.save zip archive"},
      {"no_data_pkl", [](const std::string& path) { write_archive(path, {{"other.pkl", "x"}}); }, "has no data.pkl record"},
  };
  expect_refused(cases, ".pth");
  EXPECT_GE(cases.size(), 50u);
}

// What PyTorch itself writes: a dict holding itself (the issue's `d['model'] = d`).
TEST(HostileWeights, SelfReferencingTorchSaveIsRefused) {
  TempDir tmp;
  const std::string path = tmp / "cycle.pth";
  const std::string code = "import torch, sys; d = {}; d['model'] = d; torch.save(d, sys.argv[1])";
  ASSERT_EQ(std::system((gf::test::python() + " -c \"" + code + "\" " + path).c_str()), 0);
  const std::string message = error_of([&] { read_weights(path); });
  EXPECT_NE(message.find(path + "[model]: found a dict that contains itself (a reference cycle)"), std::string::npos) << message;
}

// LibTorch's reader inflates the "version" record as it opens the archive, before this reader
// can check sizes: a deflated one declaring 2 GiB must still end in one line (the allocation
// is never touched; LibTorch refuses the size mismatch).
TEST(HostileWeights, VersionRecordDeclaring2GiBIsRefused) {
  TempDir tmp;
  const std::string path = tmp / "version_bomb.pth", script = tmp / "make.py";
  write_file(script, R"(import struct, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02}.")
    z.writestr("archive/version", b"3\n")
b = bytearray(open(sys.argv[1], "rb").read())
at = b.find(b"PK\x01\x02", b.find(b"PK\x01\x02") + 4)  # the second entry: version
struct.pack_into("<I", b, at + 24, 0x80000000)
open(sys.argv[1], "wb").write(b)
)");
  ASSERT_EQ(std::system((gf::test::python() + " " + script + " " + path).c_str()), 0);
  const std::string message = error_of([&] { read_weights(path); });
  EXPECT_EQ(message.rfind(path + ": not a readable torch.save zip archive", 0), 0u) << message;
  EXPECT_NE(message.find("failed reading file version"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(HostileWeights, SafetensorsAreRefusedWithOneLine) {
  const auto st = [](std::string header, size_t data_bytes) {
    return [header, data_bytes](const std::string& path) { write_safetensors_raw(path, header, data_bytes); };
  };
  const auto tensor = [](const std::string& name, const std::string& shape, uint64_t begin, uint64_t end, const std::string& dtype = "F32") {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(begin) +
           "," + std::to_string(end) + "]}";
  };
  std::string deep_metadata = "{\"__metadata__\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  const std::vector<Case> cases = {
      {"overlapping_offsets", st("{" + tensor("a", "[4]", 0, 16) + "," + tensor("b", "[4]", 8, 24) + "}", 24),
       "b.data_offsets: found [8, 24], expected it to start at 16, where \"a\" ends (tensors overlap)"},
      {"same_offsets", st("{" + tensor("a", "[4]", 0, 16) + "," + tensor("b", "[4]", 0, 16) + "}", 16), "(tensors overlap)"},
      {"gap_between", st("{" + tensor("a", "[4]", 0, 16) + "," + tensor("b", "[4]", 20, 36) + "}", 36), "(a gap between tensors)"},
      {"gap_at_start", st("{" + tensor("a", "[4]", 4, 20) + "}", 20), "expected it to start at 0 (a gap between tensors)"},
      {"duplicate_tensor_key", st("{" + tensor("a", "[4]", 0, 16) + "," + tensor("a", "[4]", 0, 16) + "}", 16),
       "header: key \"a\" appears twice in one object"},
      {"duplicate_metadata_key", st(R"({"__metadata__":{"k":"1","k":"2"}})", 0), "key \"k\" appears twice"},
      {"duplicate_field", st(R"({"a":{"dtype":"F32","dtype":"F64","shape":[],"data_offsets":[0,4]}})", 4), "key \"dtype\" appears twice"},
      {"offsets_past_file", st("{" + tensor("a", "[4]", 0, 16) + "}", 8),
       "a.data_offsets: found [0, 16], expected it inside the data section of 8 bytes"},
      {"offsets_far_past_file", st("{" + tensor("a", "[1073741824]", 0, uint64_t{1} << 32) + "}", 8), "inside the data section of 8 bytes"},
      {"span_differs_from_shape", st("{" + tensor("a", "[4]", 0, 12) + "}", 12),
       "a.data_offsets: found [0, 12], expected a span of 16 bytes (shape [4] of F32)"},
      {"end_before_begin", st("{" + tensor("a", "[0]", 8, 4) + "}", 8), "expected a span of 0 bytes"},
      {"trailing_bytes", st("{" + tensor("a", "[4]", 0, 16) + "}", 20), "found a data section of 20 bytes, expected 16"},
      {"byte_size_overflows", st("{" + tensor("a", "[4294967296,4294967296,16]", 0, 0) + "}", 0), "byte size overflows 64 bits"},
      {"dimension_past_int64", st("{" + tensor("a", "[0,9223372036854775809]", 0, 0) + "}", 0), "byte size overflows 64 bits"},
      {"element_count_overflows", st("{" + tensor("a", "[0,4611686018427387904,4611686018427387904]", 0, 0) + "}", 0),
       "byte size overflows 64 bits"},
      {"negative_dimension", st(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0), "a.shape: found -1, expected integers >= 0"},
      {"fractional_dimension", st(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,6]}})", 6), "a.shape: found 1.5"},
      {"negative_offset", st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4), "a.data_offsets: found -4"},
      {"offsets_past_2_64", st(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551617]}})", 1), "a.data_offsets: found"},
      {"three_offsets", st(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 4), "found 3 values, expected [begin, end]"},
      {"shape_not_list", st(R"({"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", 16), "a.shape: found number, expected a list"},
      {"no_offsets", st(R"({"a":{"dtype":"F32","shape":[1]}})", 4), "a: found no \"data_offsets\""},
      {"entry_not_object", st(R"({"a":[1,2]})", 0), "a: found array, expected {dtype, shape, data_offsets}"},
      {"name_300000_bytes", st("{" + tensor("blocks." + std::string(300000, '1') + ".mlp.w3.bias", "[1]", 0, 4) + "}", 4),
       "found a tensor name of 300019 bytes, expected at most 1024"},
      {"unknown_dtype", st(R"({"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", 16), "a.dtype: found \"F128\", expected one of"},
      {"dtype_not_string", st(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4), "a.dtype: found 7, expected a string"},
      {"metadata_not_strings", st(R"({"__metadata__":{"k":1}})", 0), "malformed header entry"},
      {"metadata_deeply_nested", st(deep_metadata, 0), "__metadata__: found array, expected an object of strings"},
      {"header_not_json", st("{not json", 0), "header is not valid JSON"},
      {"header_not_object", st("[1,2,3]", 0), "header: found array, expected an object"},
      {"header_longer_than_file", [](const std::string& path) { write_file(path, le(1000, 8) + "{}"); },
       "header length 1000 exceeds the file size 10"},
      {"header_length_2_64", [](const std::string& path) { write_file(path, le(~uint64_t{0}, 8) + "{}"); }, "exceeds the file size"},
      {"header_past_limit",  // a sparse file: the limit is checked before anything is read
       [](const std::string& path) {
         write_file(path, le(100'000'001, 8) + "{");
         std::filesystem::resize_file(path, 100'000'100);
       },
       "header length: found 100000001 bytes, expected at most 100000000"},
      {"shorter_than_length", [](const std::string& path) { write_file(path, "\x02\x00\x00"s); }, "found 3 bytes, expected a safetensors file"},
      {"escape_in_name", st("{" + tensor("\\u001b[31mred", "[4]", 0, 12) + "}", 12), "\\x1b[31mred.data_offsets"},
      {"escape_in_dtype", st("{" + tensor("a", "[1]", 0, 4, "\\u001b]0;title\\u0007") + "}", 4), "found \"\\x1b]0;title\\x07\""},
  };
  expect_refused(cases, ".safetensors");
  EXPECT_GE(cases.size(), 30u);
}

// The offset rules are the safetensors library's own: what it refuses is refused here, what
// it reads is read (repeated keys aside: it keeps the last one, this reader refuses them).
TEST(HostileWeights, OffsetRulesMatchTheSafetensorsLibrary) {
  if (std::system((gf::test::python() + " -c 'import safetensors' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "no safetensors in " << gf::test::python() << " (scripts/install-deps.sh installs it)";
  TempDir tmp;
  const auto f32 = [](const std::string& name, int begin, int end) {
    return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[" + std::to_string(begin) + "," +
           std::to_string(end) + "]}";
  };
  const std::vector<std::tuple<std::string, std::string, size_t>> files = {
      {"tiled", "{" + f32("a", 0, 16) + "," + f32("b", 16, 32) + "}", 32},
      {"overlap", "{" + f32("a", 0, 16) + "," + f32("b", 8, 24) + "}", 24},
      {"gap", "{" + f32("a", 0, 16) + "," + f32("b", 20, 36) + "}", 36},
      {"gap_at_start", "{" + f32("a", 4, 20) + "}", 20},
      {"trailing", "{" + f32("a", 0, 16) + "}", 20},
      {"past_end", "{" + f32("a", 0, 16) + "}", 12},
  };
  std::string ours;
  for (const auto& [name, header, data_bytes] : files) {
    const std::string path = tmp / name;
    write_safetensors_raw(path, header, data_bytes);
    ours += name + (error_of([&] { read_safetensors(path); }).empty() ? " read\n" : " refused\n");
  }
  write_file(tmp / "peer.py", R"(import sys
from safetensors import safe_open
for path in sys.argv[1:]:
    try:
        with safe_open(path, "pt") as f:
            [f.get_tensor(k) for k in f.keys()]
        print(path.rsplit("/", 1)[1], "read")
    except Exception:
        print(path.rsplit("/", 1)[1], "refused")
)");
  std::string command = gf::test::python() + " " + (tmp / "peer.py");
  for (const auto& file : files) command += " " + tmp / std::get<0>(file);
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string theirs;
  for (char line[256]; std::fgets(line, sizeof line, pipe);) theirs += line;
  EXPECT_EQ(::pclose(pipe), 0);
  EXPECT_EQ(ours, theirs);
  EXPECT_EQ(ours, "tiled read\noverlap refused\ngap refused\ngap_at_start refused\ntrailing refused\npast_end refused\n");
}

TEST(HostileWeights, NonRegularFilesAreRefused) {
  TempDir tmp;
  const std::string dir = tmp / "dir.safetensors";
  std::filesystem::create_directory(dir);
  EXPECT_NE(error_of([&] { read_weights(dir); }).find(dir + ": not a regular file"), std::string::npos);
  EXPECT_NE(error_of([&] { read_torch_state_dict(dir); }).find(dir + ": not a regular file"), std::string::npos);
}

// Metadata and tensor names are shown escaped by `inspect`: a file cannot drive the terminal.
TEST(HostileWeights, InspectEscapesControlCharacters) {
  TempDir tmp;
  const std::string path = tmp / "ansi.safetensors";
  write_safetensors(path, {{"\x1b[2Jname", at::zeros({2})}}, {{"note\x1b[1m", "\x1b[31mred\x1b[0m \xc2\x9b" "6n ok é"}});
  std::ostringstream out;
  print_weights_summary(path, out);
  const std::string text = out.str();
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos) << text;
  EXPECT_NE(text.find("\\x1b[2Jname"), std::string::npos) << text;
  EXPECT_NE(text.find("note\\x1b[1m"), std::string::npos) << text;
  EXPECT_NE(text.find("\\x1b[31mred\\x1b[0m \\xc2\\x9b6n ok é"), std::string::npos) << text;
}

TEST(HostileWeights, PrintableEscapesOnlyWhatIsNotText) {
  EXPECT_EQ(printable("plain: a/b [1, 2] é 日本 🙂"), "plain: a/b [1, 2] é 日本 🙂");
  EXPECT_EQ(printable(std::string("a\0b\tc\nd\x7f", 8)), "a\\x00b\\x09c\\x0ad\\x7f");
  EXPECT_EQ(printable("back\\slash"), "back\\\\slash");
  EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");              // not UTF-8
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");              // overlong '/'
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");     // a surrogate
  EXPECT_EQ(printable("\xe6\x97"), "\\xe6\\x97");              // cut short
  EXPECT_EQ(printable("\xc2\x85\xc2\xa0"), "\\xc2\\x85\xc2\xa0");  // C1 NEL escaped, NBSP kept
}

}  // namespace
}  // namespace gf::model
