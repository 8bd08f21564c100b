# Installs the built library into a fresh prefix, then configures, builds and runs a
# consumer project that finds it with find_package(reasonrt CONFIG).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install failed")
endif()
# The consumers get the library's own compile and link flags (CONSUMER_*: empty in a plain
# build; a sanitizer build's program must link the sanitizer runtime too).
set(consumer_flags "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_LINKER_FLAGS}")
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release ${consumer_flags}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer configure failed: ${out} ${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer build failed: ${out} ${err}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer failed (${rc}): ${out} ${err}")
endif()
# Only reasonrt's own API is exported from the shared library.
file(GLOB libs ${WORK_DIR}/prefix/lib*/libreasonrt.so)
execute_process(COMMAND nm -D --defined-only ${libs} OUTPUT_VARIABLE syms)
string(REGEX MATCHALL "[^\n]*(absl|simdjson)[^\n]*" leaked "${syms}")
foreach(s ${leaked})
  if(NOT s MATCHES "reasonrt")
    message(FATAL_ERROR "shared library exports a third-party symbol: ${s}")
  endif()
endforeach()
# examples/cpp, a project of its own, builds against the same prefix and streams an answer.
if(EXAMPLE_DIR)
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${WORK_DIR}/example
                          -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release ${consumer_flags}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "examples/cpp configure failed: ${out} ${err}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/example RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "examples/cpp build failed: ${out} ${err}")
  endif()
  execute_process(COMMAND ${WORK_DIR}/example/stream_answer ${MODEL_DIR} "What is 2+2?"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "tokens/s")
    message(FATAL_ERROR "examples/cpp failed (${rc}): ${out} ${err}")
  endif()
  message("examples/cpp: ${out}")
endif()
