// Tensor views, dtypes, aligned buffers and error context.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "qmr/core/aligned_buffer.hpp"
#include "qmr/core/error.hpp"
#include "qmr/core/tensor.hpp"

TEST_CASE("contiguous views have row-major strides and typed access", "[tensor]") {
  std::vector<float> data(std::size_t{2} * 3 * 4);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  const auto v = qmr::tensor_view::contiguous(reinterpret_cast<const std::byte*>(data.data()), qmr::dtype::f32,
                                              qmr::make_shape({2, 3, 4}));
  REQUIRE(v.strides[0] == 12);
  REQUIRE(v.strides[1] == 4);
  REQUIRE(v.strides[2] == 1);
  REQUIRE(v.numel() == 24);
  REQUIRE(v.nbytes() == 96);
  REQUIRE(v.is_contiguous());
  REQUIRE(v.as<float>()[23] == 23.0f);
  REQUIRE_THROWS_WITH(v.as<qmr::f16>(), "tensor is F32, not F16");
  auto transposed = v;
  std::swap(transposed.strides[1], transposed.strides[2]);
  std::swap(transposed.shape.dims[1], transposed.shape.dims[2]);
  REQUIRE_FALSE(transposed.is_contiguous());
}

TEST_CASE("a misaligned typed view is an error, not undefined behaviour", "[tensor]") {
  std::vector<std::byte> bytes(64);
  const auto v = qmr::tensor_view::contiguous(bytes.data() + 1, qmr::dtype::f32, qmr::make_shape({4}));
  REQUIRE_THROWS_WITH(v.as<float>(), "tensor data is not aligned to 4 bytes");
}

TEST_CASE("as_matrix needs a 2-D contiguous tensor", "[tensor]") {
  std::vector<float> data(6, 1.0f);
  const auto* p = reinterpret_cast<const std::byte*>(data.data());
  const auto m = qmr::as_matrix<float>(qmr::tensor_view::contiguous(p, qmr::dtype::f32, qmr::make_shape({2, 3})));
  REQUIRE(m.rows == 2);
  REQUIRE(m.cols == 3);
  REQUIRE(m(1, 2) == 1.0f);
  REQUIRE_THROWS(qmr::as_matrix<float>(qmr::tensor_view::contiguous(p, qmr::dtype::f32, qmr::make_shape({6}))));
}

TEST_CASE("dtype names and sizes", "[tensor]") {
  for (auto t : {qmr::dtype::f32, qmr::dtype::f16, qmr::dtype::bf16, qmr::dtype::i8, qmr::dtype::u8, qmr::dtype::i32}) {
    REQUIRE(qmr::dtype_from_name(qmr::dtype_name(t)) == t);
    REQUIRE(qmr::dtype_size(t) > 0);
  }
  REQUIRE_FALSE(qmr::dtype_from_name("F64").has_value());
  REQUIRE(qmr::make_shape({2, 3}).str() == "[2, 3]");
  REQUIRE_THROWS(qmr::make_shape({1, 2, 3, 4, 5}));
  REQUIRE_THROWS(qmr::make_shape({-1}));
}

TEST_CASE("aligned_buffer is aligned, zeroed, copyable and movable", "[tensor]") {
  qmr::aligned_buffer<float> a(100);
  REQUIRE(reinterpret_cast<std::uintptr_t>(a.data()) % qmr::buffer_alignment == 0);
  for (float x : a) REQUIRE(x == 0.0f);
  a[7] = 3.0f;
  qmr::aligned_buffer<float> b = a;
  REQUIRE(b[7] == 3.0f);
  REQUIRE(b.data() != a.data());
  qmr::aligned_buffer<float> c = std::move(a);
  REQUIRE(c[7] == 3.0f);
  REQUIRE(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is what is tested
  qmr::aligned_buffer<float> empty(0);
  REQUIRE(empty.data() == nullptr);
}

TEST_CASE("aligned_buffer puts buffers of 2 MB and more on 2 MB boundaries", "[tensor]") {
  // 3 MB and 100 bytes: one whole huge page madvised, the tail on 4 KB pages; every byte zeroed.
  const std::size_t n = (std::size_t{3} << 20) + 100;
  qmr::aligned_buffer<std::uint8_t> big(n);
  REQUIRE(reinterpret_cast<std::uintptr_t>(big.data()) % qmr::huge_page_bytes == 0);
  std::size_t nonzero = 0;
  for (std::uint8_t b : big) nonzero += b != 0;
  REQUIRE(nonzero == 0);
  big[n - 1] = 7;
  const qmr::aligned_buffer<std::uint8_t> copy = big;
  REQUIRE(reinterpret_cast<std::uintptr_t>(copy.data()) % qmr::huge_page_bytes == 0);
  REQUIRE(copy[n - 1] == 7);
  REQUIRE(qmr::buffer_align_for(qmr::huge_page_bytes - 1) == qmr::buffer_alignment);
  REQUIRE(qmr::buffer_align_for(qmr::huge_page_bytes) == qmr::huge_page_bytes);
}

TEST_CASE("errors carry their context", "[error]") {
  const qmr::error e("bad offset", qmr::in_file("m.safetensors", "lm_head.weight", "data_offsets", 4096));
  REQUIRE(std::string(e.what()) == "m.safetensors: tensor 'lm_head.weight': field 'data_offsets': byte 4096: bad offset");
  REQUIRE(e.context().offset == 4096u);
  REQUIRE(e.message() == "bad offset");
  REQUIRE(std::string(qmr::error("plain").what()) == "plain");
}
