# Every external dependency is found here, once; targets link the imported names.

# LibTorch: a TorchConfig.cmake (CUDA LibTorch / PyTorch install via CMAKE_PREFIX_PATH, or
# Debian's libtorch-dev) when one works, else Debian's plain header/library layout.
find_package(Torch CONFIG QUIET)
if(Torch_FOUND)
  add_library(gf_torch INTERFACE)
  target_link_libraries(gf_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(gf_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  separate_arguments(_gf_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(gf_torch INTERFACE ${_gf_torch_flags})
  message(STATUS "greenfound: LibTorch from TorchConfig.cmake (${Torch_DIR})")
else()
  find_path(GF_TORCH_INCLUDE torch/csrc/api/include/torch/torch.h PATHS /usr/include REQUIRED)
  find_library(GF_TORCH_LIB torch REQUIRED)
  find_library(GF_TORCH_CPU_LIB torch_cpu REQUIRED)
  find_library(GF_C10_LIB c10 REQUIRED)
  add_library(gf_torch INTERFACE)
  target_include_directories(gf_torch SYSTEM INTERFACE ${GF_TORCH_INCLUDE} ${GF_TORCH_INCLUDE}/torch/csrc/api/include)
  target_link_libraries(gf_torch INTERFACE ${GF_TORCH_LIB} ${GF_TORCH_CPU_LIB} ${GF_C10_LIB})
  message(STATUS "greenfound: LibTorch from Debian layout (${GF_TORCH_LIB})")
endif()

find_package(MPI REQUIRED COMPONENTS C)
find_package(HDF5 REQUIRED COMPONENTS C)
# OpenCV: only core/imgproc/imgcodecs (Debian ships no OpenCVConfig.cmake without the full
# libopencv-dev, which pulls in ~100 packages we do not use).
find_path(GF_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
add_library(gf_opencv INTERFACE)
target_include_directories(gf_opencv SYSTEM INTERFACE ${GF_OPENCV_INCLUDE})
foreach(_m core imgproc imgcodecs)
  find_library(GF_OPENCV_${_m} opencv_${_m} REQUIRED)
  target_link_libraries(gf_opencv INTERFACE ${GF_OPENCV_${_m}})
endforeach()
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 CONFIG QUIET)
if(NOT CLI11_FOUND)
  find_path(GF_CLI11_INCLUDE CLI/CLI.hpp REQUIRED)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${GF_CLI11_INCLUDE})
endif()
find_package(OpenSSL REQUIRED)
find_package(Threads REQUIRED)

# HDF5 as one imported target (Debian's serial build lives under include/hdf5/serial).
add_library(gf_hdf5 INTERFACE)
target_include_directories(gf_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(gf_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(gf_hdf5 INTERFACE ${HDF5_C_DEFINITIONS})

# CUDA + NCCL are optional: the NCCL backend is built whenever both are found, so it at
# least compiles and links on CPU-only machines that carry the toolkit (/usr/local/cuda).
find_package(CUDAToolkit QUIET)
find_path(GF_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
find_library(GF_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64 /usr/local/cuda/lib)
if(CUDAToolkit_FOUND AND GF_NCCL_INCLUDE AND GF_NCCL_LIB)
  set(_gf_nccl_default ON)
else()
  set(_gf_nccl_default OFF)
endif()
option(GF_WITH_NCCL "Build the NCCL communicator backend" ${_gf_nccl_default})
message(STATUS "greenfound: NCCL backend ${GF_WITH_NCCL}")

# Tests that use h5py/sklearn/scipy/torch need Debian's interpreter, not the first python3 on PATH.
find_program(GF_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT GF_PYTHON3)
  find_program(GF_PYTHON3 python3)
endif()
