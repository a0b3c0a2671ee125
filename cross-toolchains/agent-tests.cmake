# Included by the top-level CMakeLists.txt when MISTORE_AGENT_ONLY is ON (the
# gateway cross builds): registers the unit tests of shared/ and of the agent
# packaging, without the POP/DC/client/simulator/system tests. The helper
# mirrors mistore_unit_test() in tests/CMakeLists.txt (keep them alike).
find_package(GTest REQUIRED)
include(GoogleTest)

function(mistore_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  # Under qemu, listing the tests takes longer than natively.
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS unit)
endfunction()

add_subdirectory(${CMAKE_SOURCE_DIR}/tests/shared ${CMAKE_BINARY_DIR}/tests/shared)
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/packaging/CMakeLists.txt)
  add_subdirectory(${CMAKE_SOURCE_DIR}/tests/packaging ${CMAKE_BINARY_DIR}/tests/packaging)
endif()
# The agent's own state machine and background I/O pacing (fake clock).
add_subdirectory(${CMAKE_SOURCE_DIR}/tests/gateway-agent ${CMAKE_BINARY_DIR}/tests/gateway-agent)
