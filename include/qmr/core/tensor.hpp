// Non-owning tensor views (pointer, dtype, shape, strides) and typed row-major matrix views.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "dtype.hpp"
#include "error.hpp"

namespace qmr {

// Enough for every tensor of a transformer checkpoint (at most [batch, heads, seq, dim]).
inline constexpr int max_rank = 4;

struct shape_t {
  std::array<std::int64_t, max_rank> dims{};
  int rank = 0;

  std::int64_t operator[](int i) const { return dims[static_cast<std::size_t>(i)]; }
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[static_cast<std::size_t>(i)];
    return n;
  }
  std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[static_cast<std::size_t>(i)]);
    return s + "]";
  }
  friend bool operator==(const shape_t& a, const shape_t& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[static_cast<std::size_t>(i)] != b.dims[static_cast<std::size_t>(i)]) return false;
    return true;
  }
};

inline shape_t make_shape(std::initializer_list<std::int64_t> dims) {
  check(dims.size() <= static_cast<std::size_t>(max_rank), "tensor rank above " + std::to_string(max_rank));
  shape_t s;
  for (std::int64_t d : dims) {
    check(d >= 0, "negative dimension " + std::to_string(d));
    s.dims[static_cast<std::size_t>(s.rank++)] = d;
  }
  return s;
}

// A dense tensor seen through a byte pointer. Strides are in elements;
// `packed` tensors (quantization codes) are described by quant::qtensor instead.
template <class Byte>
struct basic_tensor_view {
  Byte* data = nullptr;
  dtype type = dtype::f32;
  shape_t shape;
  std::array<std::int64_t, max_rank> strides{};

  static basic_tensor_view contiguous(Byte* data, dtype type, shape_t shape) {
    basic_tensor_view v{data, type, shape, {}};
    std::int64_t stride = 1;
    for (int i = shape.rank - 1; i >= 0; --i) {
      v.strides[static_cast<std::size_t>(i)] = stride;
      stride *= shape.dims[static_cast<std::size_t>(i)];
    }
    return v;
  }

  std::int64_t numel() const { return shape.numel(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(type); }

  bool is_contiguous() const {
    std::int64_t stride = 1;
    for (int i = shape.rank - 1; i >= 0; --i) {
      if (shape.dims[static_cast<std::size_t>(i)] != 1 && strides[static_cast<std::size_t>(i)] != stride) return false;
      stride *= shape.dims[static_cast<std::size_t>(i)];
    }
    return true;
  }

  // Typed pointer; a wrong dtype or a pointer misaligned for T is an error, not UB.
  template <class T>
  auto as() const {
    check(type == dtype_of<T>(), "tensor is " + std::string(dtype_name(type)) + ", not " +
                                     std::string(dtype_name(dtype_of<T>())));
    check(reinterpret_cast<std::uintptr_t>(data) % alignof(T) == 0,
          "tensor data is not aligned to " + std::to_string(alignof(T)) + " bytes");
    if constexpr (std::is_const_v<Byte>) {
      return reinterpret_cast<const T*>(data);
    } else {
      return reinterpret_cast<T*>(data);
    }
  }
};

using tensor_view = basic_tensor_view<const std::byte>;
using mut_tensor_view = basic_tensor_view<std::byte>;

// A row-major matrix with a row stride (in elements): the shape kernels take.
template <class T>
struct matrix_view {
  T* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t stride = 0;  // elements between the starts of consecutive rows, >= cols

  matrix_view() = default;
  matrix_view(T* d, std::int64_t r, std::int64_t c) : data(d), rows(r), cols(c), stride(c) {}
  matrix_view(T* d, std::int64_t r, std::int64_t c, std::int64_t s) : data(d), rows(r), cols(c), stride(s) {}
  // A view of non-const T converts to a view of const T.
  template <class U, class = std::enable_if_t<std::is_same_v<const U, T>>>
  matrix_view(matrix_view<U> m) : data(m.data), rows(m.rows), cols(m.cols), stride(m.stride) {}

  T* row(std::int64_t r) const { return data + r * stride; }
  T& operator()(std::int64_t r, std::int64_t c) const { return data[r * stride + c]; }
};

// A 2-D contiguous tensor_view of element type T as a matrix_view.
template <class T>
matrix_view<const T> as_matrix(const tensor_view& t) {
  check(t.shape.rank == 2, "expected a 2-D tensor, got shape " + t.shape.str());
  check(t.is_contiguous(), "expected a contiguous tensor");
  return {t.as<T>(), t.shape[0], t.shape[1]};
}

// Copies a contiguous F32/F16/BF16 tensor into out[numel] as f32.
inline void copy_to_f32(const tensor_view& t, float* out) {
  check(t.is_contiguous(), "expected a contiguous tensor");
  const std::int64_t n = t.numel();
  const auto convert = [&](auto tag) {
    using T = decltype(tag);
    const T* src = t.as<T>();
    for (std::int64_t i = 0; i < n; ++i) out[i] = to_float(src[i]);
  };
  switch (t.type) {
    case dtype::f32: return convert(float{});
    case dtype::f16: return convert(f16{});
    case dtype::bf16: return convert(bf16{});
    default: throw error("cannot convert " + std::string(dtype_name(t.type)) + " to f32");
  }
}

}  // namespace qmr
