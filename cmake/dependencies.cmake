# Every external dependency is found here, once; targets link the imported names.

# LibTorch with CUDA, from the torch wheel in the project's venv (scripts/install-deps.sh): the
# venv's interpreter says where its TorchConfig.cmake and its NCCL are. That interpreter also
# runs the tests' Python peers (timm, scikit-learn, scipy, h5py), never the first python3 on PATH.
set(GF_PYTHON "" CACHE FILEPATH "Python of the project's venv (torch, timm, sklearn, ...); scripts/build.sh passes it")
if(NOT GF_PYTHON OR NOT EXISTS "${GF_PYTHON}")
  message(FATAL_ERROR "GF_PYTHON: found '${GF_PYTHON}', expected the venv's python "
                      "(run scripts/install-deps.sh, then scripts/build.sh, which passes -DGF_PYTHON)")
endif()
execute_process(
  COMMAND "${GF_PYTHON}" -c "import torch, nvidia.nccl as n; print(torch.utils.cmake_prefix_path); print(list(n.__path__)[0]); print(torch.__version__)"
  OUTPUT_VARIABLE _gf_py_out ERROR_VARIABLE _gf_py_err RESULT_VARIABLE _gf_py_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _gf_py_rc EQUAL 0)
  message(FATAL_ERROR "GF_PYTHON (${GF_PYTHON}): cannot import torch and its NCCL wheel: ${_gf_py_err}")
endif()
string(REPLACE "\n" ";" _gf_py_out "${_gf_py_out}")
list(GET _gf_py_out 0 _gf_torch_prefix)
list(GET _gf_py_out 1 _gf_nccl_root)
list(GET _gf_py_out 2 GF_TORCH_WHEEL_VERSION)
list(PREPEND CMAKE_PREFIX_PATH "${_gf_torch_prefix}")
set(Python_EXECUTABLE "${GF_PYTHON}" CACHE FILEPATH "")  # Caffe2's config looks for a Python too
find_package(CUDAToolkit REQUIRED)
find_package(Torch REQUIRED CONFIG)
if(NOT TARGET torch_cuda)
  message(FATAL_ERROR "LibTorch ${GF_TORCH_WHEEL_VERSION} at ${Torch_DIR} has no CUDA (torch_cuda): "
                      "expected the CUDA build that scripts/requirements.txt pins")
endif()
add_library(gf_torch INTERFACE)
# libstdc++ ahead of LibTorch in every binary's NEEDED list: the wheel's libtorch exports its own
# broken copies of std::filesystem (pytorch/pytorch#133437), which must not win symbol lookup.
target_link_libraries(gf_torch INTERFACE stdc++ ${TORCH_LIBRARIES})
target_include_directories(gf_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
separate_arguments(_gf_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(gf_torch INTERFACE ${_gf_torch_flags})

# NCCL: the very libnccl the LibTorch build loads (the venv's nvidia-nccl wheel), so one NCCL
# lives in the process; its header comes from the same wheel.
find_path(GF_NCCL_INCLUDE nccl.h PATHS "${_gf_nccl_root}/include" NO_DEFAULT_PATH REQUIRED)
find_file(GF_NCCL_LIB libnccl.so.2 PATHS "${_gf_nccl_root}/lib" NO_DEFAULT_PATH REQUIRED)
file(STRINGS "${GF_NCCL_INCLUDE}/nccl.h" _gf_nccl_version REGEX "^#define NCCL_(MAJOR|MINOR|PATCH) ")
string(REGEX REPLACE "[^0-9;]" "" _gf_nccl_version "${_gf_nccl_version}")
string(REPLACE ";" "." _gf_nccl_version "${_gf_nccl_version}")
message(STATUS "greenfound: LibTorch ${GF_TORCH_WHEEL_VERSION} with CUDA ${CUDAToolkit_VERSION} (${Torch_DIR})")
message(STATUS "greenfound: CUDA on, NCCL backend on (NCCL ${_gf_nccl_version}, ${GF_NCCL_LIB})")
message(STATUS "greenfound: Python peers from ${GF_PYTHON}")

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
