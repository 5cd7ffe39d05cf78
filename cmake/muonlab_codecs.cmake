# The optional compression libraries of `data prepare`'s inputs: Snappy,
# Zstandard, Brotli and LZ4 (Parquet pages; Zstandard also .zst files).
# Snappy and Zstandard come with CMake files; Debian ships Brotli and LZ4
# with pkg-config files only. Each one missing leaves its codec refused by
# name. Used by the build and by the fuzz targets' project.
find_package(Snappy CONFIG QUIET)
find_package(zstd CONFIG QUIET)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(BROTLIDEC QUIET IMPORTED_TARGET libbrotlidec)
  pkg_check_modules(LZ4 QUIET IMPORTED_TARGET liblz4)
endif()

# Codec name (the MUONLAB_<name> define) and the target that provides it.
set(MUONLAB_CODEC_TARGETS
  SNAPPY Snappy::snappy
  ZSTD zstd::libzstd_shared
  BROTLI PkgConfig::BROTLIDEC
  LZ4 PkgConfig::LZ4)

# Sets MUONLAB_<name> to ON or OFF in the caller's scope for each codec.
macro(muonlab_codecs_found)
  set(_pairs ${MUONLAB_CODEC_TARGETS})
  while(_pairs)
    list(POP_FRONT _pairs _codec _target)
    if(TARGET ${_target})
      set(MUONLAB_${_codec} ON)
    else()
      set(MUONLAB_${_codec} OFF)
    endif()
  endwhile()
endmacro()

# Links `target` privately against every codec library found, defining
# MUONLAB_<name>=1 for the sources that use it.
function(muonlab_link_codecs target)
  set(pairs ${MUONLAB_CODEC_TARGETS})
  while(pairs)
    list(POP_FRONT pairs codec library)
    if(TARGET ${library})
      target_link_libraries(${target} PRIVATE ${library})
      target_compile_definitions(${target} PRIVATE MUONLAB_${codec}=1)
    endif()
  endwhile()
endfunction()
