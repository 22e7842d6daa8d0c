# packaging/install.cmake - the install-time part of `cmake --install` and `cpack`.
#
# Included by cmake_install.cmake (install(SCRIPT) in CMakeLists.txt), so it runs when the
# files are installed, not when the project is configured. That matters because the prefix
# is often chosen only then: `cmake --install build --prefix /opt/x`, or cpack, which
# installs with the prefix /usr into a staging DESTDIR whatever the build was configured
# with. It owns the files whose place or content depends on that prefix:
#
#   <sysconfdir>/smsguard/smsguard.conf    from packaging/smsguard.conf.in, never overwritten:
#                                         a changed file is kept and the new one is written
#                                         beside it as smsguard.conf.dist
#   <unitdir>/smsguard.service            from packaging/smsguard.service.in
#
# where <sysconfdir> is /etc for the prefix /usr, /etc/opt/X for /opt/X, else <prefix>/etc
# (GNUInstallDirs' rule, applied to the install-time prefix), or CMAKE_INSTALL_SYSCONFDIR
# when that was configured absolute; and <unitdir> is /lib/systemd/system for the prefix
# /usr (Debian 12's place for packaged units), else <prefix>/lib/systemd/system, or
# SG_SYSTEMD_UNITDIR when set. Everything else (binaries, man pages, documents) is installed
# by plain install() rules relative to the prefix.
#
# Set before this file is included (install(CODE) in CMakeLists.txt): SG_PKG_SOURCE_DIR,
# SG_PKG_BINARY_DIR, SG_PKG_SYSCONFDIR, SG_PKG_SBINDIR, SG_PKG_DOCDIR (the configured,
# usually relative, GNUInstallDirs values) and SG_PKG_UNITDIR (may be empty).

set(_prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" _prefix "${_prefix}")

# _sg_under_prefix VAR VALUE: VALUE when absolute, else <prefix>/VALUE.
function(_sg_under_prefix var value)
  if(IS_ABSOLUTE "${value}")
    set(${var} "${value}" PARENT_SCOPE)
  else()
    set(${var} "${_prefix}/${value}" PARENT_SCOPE)
  endif()
endfunction()

if(IS_ABSOLUTE "${SG_PKG_SYSCONFDIR}")
  set(_sysconfdir "${SG_PKG_SYSCONFDIR}")
elseif(_prefix STREQUAL "/usr")
  set(_sysconfdir "/etc")
elseif(_prefix MATCHES "^/opt/")
  set(_sysconfdir "/etc${_prefix}")
else()
  set(_sysconfdir "${_prefix}/${SG_PKG_SYSCONFDIR}")
endif()

if(NOT SG_PKG_UNITDIR STREQUAL "")
  _sg_under_prefix(_unitdir "${SG_PKG_UNITDIR}")
elseif(_prefix STREQUAL "/usr")
  set(_unitdir "/lib/systemd/system")
else()
  set(_unitdir "${_prefix}/lib/systemd/system")
endif()

# The values the templates see (@SG_...@).
set(SG_CONFDIR "${_sysconfdir}/smsguard")
_sg_under_prefix(SG_SBINDIR "${SG_PKG_SBINDIR}")
_sg_under_prefix(SG_DOCDIR "${SG_PKG_DOCDIR}")

# A directory of this install's own, removed at the end: `cmake --install` and cpack may
# run at once on one build tree (the install and package tests do).
# (string(RANDOM) alone is seeded with the time in seconds: two installs started in the same
# second would share it.)
string(RANDOM LENGTH 12 _key)
string(TIMESTAMP _now "%s%f")
string(SHA1 _key "${_prefix}|$ENV{DESTDIR}|${_now}|${_key}")
string(SUBSTRING "${_key}" 0 16 _key)
set(_gen "${SG_PKG_BINARY_DIR}/packaging/install-${_key}")
file(MAKE_DIRECTORY "${_gen}")
configure_file("${SG_PKG_SOURCE_DIR}/packaging/smsguard.service.in" "${_gen}/smsguard.service"
               @ONLY)
configure_file("${SG_PKG_SOURCE_DIR}/packaging/smsguard.conf.in" "${_gen}/smsguard.conf" @ONLY)

if(NOT CMAKE_INSTALL_COMPONENT OR CMAKE_INSTALL_COMPONENT STREQUAL "Unspecified")
  file(INSTALL DESTINATION "${_unitdir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${_gen}/smsguard.service")

  # The configuration belongs to the operator once installed (dpkg treats it as a
  # conffile; this does the same for installs from source).
  set(_conf "$ENV{DESTDIR}${SG_CONFDIR}/smsguard.conf")
  set(_rename "smsguard.conf")
  if(EXISTS "${_conf}")
    file(SHA256 "${_conf}" _have)
    file(SHA256 "${_gen}/smsguard.conf" _new)
    if(NOT _have STREQUAL _new)
      set(_rename "smsguard.conf.dist")
      message(STATUS "Keeping ${_conf}: it differs from the shipped configuration, which is "
                     "written beside it as smsguard.conf.dist")
    endif()
  endif()
  file(INSTALL DESTINATION "${SG_CONFDIR}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES "${_gen}/smsguard.conf" RENAME "${_rename}")
endif()

file(REMOVE_RECURSE "${_gen}")
