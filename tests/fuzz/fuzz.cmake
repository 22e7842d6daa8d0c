# tests/fuzz/fuzz.cmake - every tests/fuzz/fuzz_<target>.c is a fuzz target.
#
# With -DSG_FUZZ=ON (CC=clang) each becomes a libFuzzer binary fuzz_<target>, built with
# ASan+UBSan; scripts/fuzz.sh runs each for a bounded time over tests/fuzz/corpus/<target>/.
# Without it, each target is linked with replay_main.c and ctest replays its seed corpus
# and the crash-regression corpus on every build (label fuzz-replay).
file(GLOB SG_FUZZ_TARGETS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
foreach(src ${SG_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  string(REPLACE "fuzz_" "" corpus ${name})
  if(SG_FUZZ)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${src} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c)
    add_test(NAME replay_${name}
             COMMAND ${name} ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${corpus}
                     ${PROJECT_SOURCE_DIR}/tests/fuzz/regressions/${corpus})
    set_tests_properties(replay_${name} PROPERTIES LABELS fuzz-replay TIMEOUT 120)
  endif()
  target_link_libraries(${name} PRIVATE sg_core)
  if(name STREQUAL "fuzz_h1")
    # cJSON, a reader independent of ours, checks the gateway's error bodies (fuzz_h1.c).
    target_link_libraries(${name} PRIVATE PkgConfig::CJSON)
  endif()
  if(name STREQUAL "fuzz_conf")
    # Tells libconfig's own parse leak apart from conf.c's memory (fuzz_conf.c).
    target_link_options(${name} PRIVATE -Wl,--wrap=config_read_file)
  endif()
endforeach()
