# scripts/floors.cmake - the floor check, run by the build (CMakeLists.txt, target sg_floors):
#   cmake -DSG_SOURCE_DIR=<source dir> -DSG_STAMP=<file> -P scripts/floors.cmake
# Fails when a file of a lower floor includes a file of a higher one (docs/design.md
# "Folders"): base/ uses nothing above it, audit/ and conf/ only base/, policy/ base/ and
# conf/.
set(rules "base:proxy|filters|conf|policy|audit" "audit:proxy|filters|conf|policy"
          "conf:proxy|filters|policy|audit" "policy:proxy|filters|audit")
# Single includes allowed across a floor, as "file>included" (none today).
set(allowed "")
set(bad "")
foreach(rule ${rules})
  string(REPLACE ":" ";" rule "${rule}")
  list(GET rule 0 floor)
  list(GET rule 1 above)
  file(GLOB files ${SG_SOURCE_DIR}/${floor}/*.c ${SG_SOURCE_DIR}/${floor}/*.h)
  foreach(f ${files})
    file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<](${above})/")
    file(RELATIVE_PATH rel ${SG_SOURCE_DIR} ${f})
    foreach(l ${lines})
      string(REGEX REPLACE "^[^\"<]*[\"<]([^\">]*)[\">].*$" "\\1" inc "${l}")
      list(FIND allowed "${rel}>${inc}" ok)
      if(ok EQUAL -1)
        string(APPEND bad "\n  ${rel}: ${l}")
      endif()
    endforeach()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "a lower floor includes a higher one:${bad}")
endif()
file(TOUCH ${SG_STAMP})
