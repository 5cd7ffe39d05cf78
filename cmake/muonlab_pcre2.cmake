# PkgConfig::PCRE2: PCRE2 (8-bit) through pkg-config where there is one, else
# by its header and library (machines with PyTorch but without pkg-config,
# packages unpacked under a prefix). Used by the build and, installed, by
# muonlabConfig.cmake: the static libmuonlab links it privately, so its users
# need the target too.
if(NOT TARGET PkgConfig::PCRE2)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
  endif()
endif()
if(NOT TARGET PkgConfig::PCRE2)
  find_path(PCRE2_INCLUDE_DIR pcre2.h)
  find_library(PCRE2_LIBRARY pcre2-8)
  if(PCRE2_INCLUDE_DIR AND PCRE2_LIBRARY)
    add_library(PkgConfig::PCRE2 UNKNOWN IMPORTED)
    set_target_properties(PkgConfig::PCRE2 PROPERTIES IMPORTED_LOCATION "${PCRE2_LIBRARY}"
                          INTERFACE_INCLUDE_DIRECTORIES "${PCRE2_INCLUDE_DIR}")
  endif()
endif()
