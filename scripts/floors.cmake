# scripts/floors.cmake - the floor check, run by the build (CMakeLists.txt, target sg_floors):
#   cmake -DSG_SOURCE_DIR=<source dir> -DSG_STAMP=<file> -P scripts/floors.cmake
# Fails when a file of a lower floor includes a file of a higher one (docs/design.md
# "Folders"): base/ uses nothing above it, conf/ only base/, policy/ base/ and conf/.
set(rules "base:proxy|filters|conf|policy" "conf:proxy|filters|policy" "policy:proxy|filters")
set(bad "")
foreach(rule ${rules})
  string(REPLACE ":" ";" rule "${rule}")
  list(GET rule 0 floor)
  list(GET rule 1 above)
  file(GLOB files ${SG_SOURCE_DIR}/${floor}/*.c ${SG_SOURCE_DIR}/${floor}/*.h)
  foreach(f ${files})
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<](${above})/")
    foreach(l ${lines})
      file(RELATIVE_PATH rel ${SG_SOURCE_DIR} ${f})
      string(APPEND bad "\n  ${rel}: ${l}")
    endforeach()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "a lower floor includes a higher one:${bad}")
endif()
file(TOUCH ${SG_STAMP})
