# What `cmake --install` lays out under its prefix, all paths relative to it
# so the tree can be moved:
#   bin/muonlab                          the command-line program
#   lib/libmuonlab_<layer>.a             one static library per layer
#   include/muonlab/...                  the library's headers (no CLI, no
#                                        precompiled header, no Python glue)
#   lib/cmake/muonlab/                   muonlabConfig.cmake: muonlab::muonlab
#                                        and muonlab::optim
#   share/muonlab/gpt2/                  the GPT-2 tokenizer files, when
#                                        scripts/fetch-data has brought them
#   share/doc/muonlab/                   LICENSE, CITATION.cff
#   share/bash-completion/completions/muonlab   bash completion, where
#                                        bash-completion looks for it
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MUONLAB_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/muonlab)

install(TARGETS muonlab RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS muonlab_core muonlab_optim EXPORT muonlabOptimTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS muonlab_models muonlab_data muonlab_analysis muonlab_distributed muonlab_training muonlab_sweep
                muonlab_bench muonlab_lib EXPORT muonlabTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/muonlab DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h"
        PATTERN "cli" EXCLUDE
        PATTERN "python" EXCLUDE
        PATTERN "pch.h" EXCLUDE)

install(EXPORT muonlabOptimTargets NAMESPACE muonlab:: DESTINATION ${MUONLAB_CMAKE_DIR})
install(EXPORT muonlabTargets NAMESPACE muonlab:: DESTINATION ${MUONLAB_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/muonlabConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/muonlabConfig.cmake
                              INSTALL_DESTINATION ${MUONLAB_CMAKE_DIR})
# 0.x: minor versions may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/muonlabConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/muonlabConfig.cmake ${PROJECT_BINARY_DIR}/muonlabConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/muonlab_pcre2.cmake
        DESTINATION ${MUONLAB_CMAKE_DIR})

# load_tokenizer("gpt2") finds these beside the installed binary
# (share/muonlab/gpt2 one level above bin/ or lib/). OPTIONAL: a build
# without scripts/fetch-data installs everything else.
install(FILES ${PROJECT_SOURCE_DIR}/data/gpt2/encoder.json ${PROJECT_SOURCE_DIR}/data/gpt2/vocab.bpe
        DESTINATION ${CMAKE_INSTALL_DATADIR}/muonlab/gpt2 OPTIONAL)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/CITATION.cff
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Written by the program being installed (`muonlab completion bash`), so it
# completes exactly the commands that build has. bash-completion loads it
# the first time `muonlab` is completed.
set(MUONLAB_COMPLETION_DIR ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(CODE "
  set(completions \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${MUONLAB_COMPLETION_DIR}\")
  file(MAKE_DIRECTORY \"\${completions}\")
  message(STATUS \"Installing: \${completions}/muonlab\")
  execute_process(COMMAND \"$<TARGET_FILE:muonlab>\" completion bash OUTPUT_FILE \"\${completions}/muonlab\"
                  RESULT_VARIABLE written)
  if(NOT written EQUAL 0)
    message(FATAL_ERROR \"muonlab completion bash failed (\${written})\")
  endif()")
