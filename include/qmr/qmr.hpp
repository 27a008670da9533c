// Umbrella header: everything in qmr that builds for the CPU.
#pragma once

#include "config.hpp"
#include "core/aligned_buffer.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/half.hpp"
#include "core/tensor.hpp"
#include "core/thread_pool.hpp"
#include "io/mapped_file.hpp"
#include "io/quantized.hpp"
#include "io/safetensors.hpp"
#include "kernels/ref/matmul.hpp"
#include "quant/format.hpp"
#include "quant/pack.hpp"
#include "quant/qtensor.hpp"
#include "quant/rtn.hpp"
