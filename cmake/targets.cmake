# gf_add_library(<folder> [DEPS targets...]): one static library per top-level folder, built
# from every .cpp in it. Includes are rooted at the project ("model/vit.hpp").
function(gf_add_library folder)
  cmake_parse_arguments(ARG "" "" "DEPS;SOURCES_EXCLUDE" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  foreach(_ex ${ARG_SOURCES_EXCLUDE})
    list(REMOVE_ITEM _srcs ${CMAKE_CURRENT_SOURCE_DIR}/${_ex})
  endforeach()
  set(_t gf_${folder})
  add_library(${_t} STATIC ${_srcs})
  target_include_directories(${_t} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${_t} PUBLIC ${ARG_DEPS})
  target_compile_options(${_t} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  gf_use_torch_pch(${_t})
endfunction()

# One precompiled LibTorch header shared by every target (a TU that parses the LibTorch
# headers costs ~15 s on these machines).
add_library(gf_pch OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch.cpp)
target_link_libraries(gf_pch PUBLIC gf_torch)
target_precompile_headers(gf_pch PRIVATE ${PROJECT_SOURCE_DIR}/cmake/torch_pch.hpp)
# Only targets that see LibTorch take it (the rest would parse it for nothing).
function(gf_use_torch_pch target)
  get_target_property(_libs ${target} LINK_LIBRARIES)
  set(_uses_torch OFF)
  foreach(_l ${_libs})
    if(_l MATCHES "^gf_(torch|model|data|dist|energy|train|eval|launcher)$")
      set(_uses_torch ON)
    endif()
  endforeach()
  if(_uses_torch)
    target_precompile_headers(${target} REUSE_FROM gf_pch)
  endif()
endfunction()

# gf_add_gtest(<name> SOURCES ... LIBS ... [LABELS ...] [RESOURCE_LOCK name]): a GoogleTest
# binary under ctest with the environment tests need to find fixtures, the CLI and the venv's
# python. Tests sharing a RESOURCE_LOCK (e.g. the one SLURM cluster) never run at once.
include(GoogleTest)
function(gf_add_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT;RESOURCE_LOCK" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  gf_use_torch_pch(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(name IN_LIST GF_SANITIZED_TESTS)  # tests/CMakeLists.txt
    list(APPEND ARG_LABELS sanitize)
  endif()
  set(_env
    "GF_FIXTURES=${PROJECT_SOURCE_DIR}/tests/fixtures" "GF_PYTHON=${GF_PYTHON}"
    "GF_BIN=$<TARGET_FILE:greenfound>" "GF_MPIEXEC=${MPIEXEC_EXECUTABLE}" "GF_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    "OMP_NUM_THREADS=1" "OMPI_ALLOW_RUN_AS_ROOT=1" "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1" "OMPI_MCA_rmaps_base_oversubscribe=1")
  set(_lock)
  if(ARG_RESOURCE_LOCK)
    set(_lock RESOURCE_LOCK ${ARG_RESOURCE_LOCK})
  endif()
  if(GF_SANITIZE)
    # One ctest test per binary: each process pays LibTorch's and ASan's start-up (~3 s here)
    # once instead of once per test, and a binary's tests run one after another.
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR} TIMEOUT ${ARG_TIMEOUT}
                         LABELS "${ARG_LABELS}" ENVIRONMENT "${_env}" ${_lock})
    return()
  endif()
  # gtest_discover_tests (PRE_TEST) re-splits list-valued properties twice: escape the
  # separators so ENVIRONMENT stays one list of NAME=VALUE items.
  string(REPLACE ";" "\\\\\\\\\\\\\\;" _env "${_env}")
  string(REPLACE ";" "\\\\\\\\\\\\\\;" _labels "${ARG_LABELS}")
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${_labels}" ENVIRONMENT "${_env}" ${_lock})
endfunction()
