# gf_git_stamp(<source>...): compiles the sources with GF_GIT_COMMIT="<short hash>" of the
# checkout, for run provenance. A commit re-runs the configure step (HEAD and the branch's
# ref file are its inputs) so the stamp follows HEAD; outside git the sources say "unknown".
execute_process(COMMAND git rev-parse --short HEAD WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  OUTPUT_VARIABLE GF_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(GF_GIT_COMMIT)
  execute_process(COMMAND git symbolic-ref -q HEAD WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    OUTPUT_VARIABLE _gf_ref OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  foreach(_gf_path HEAD ${_gf_ref})
    execute_process(COMMAND git rev-parse --git-path ${_gf_path} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
      OUTPUT_VARIABLE _gf_file OUTPUT_STRIP_TRAILING_WHITESPACE)
    get_filename_component(_gf_file ${_gf_file} ABSOLUTE BASE_DIR ${PROJECT_SOURCE_DIR})
    if(EXISTS ${_gf_file})
      set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_gf_file})
    endif()
  endforeach()
endif()

function(gf_git_stamp)
  if(GF_GIT_COMMIT)
    set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_DEFINITIONS GF_GIT_COMMIT="${GF_GIT_COMMIT}")
  endif()
endfunction()
