# `cmake --install` puts the layer libraries, their headers, the semcodec
# executable and a CMake package into the prefix, so another project can do
#   find_package(semcodec REQUIRED)
#   target_link_libraries(app PRIVATE semcodec::semcodec)
# (scripts/check_install.sh builds cmake/consumer_example against an install).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SEMCODEC_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/semcodec)
set(_semcodec_libs semcodec_util semcodec_config semcodec_data semcodec_models semcodec_entropy semcodec_codec semcodec_eval
    semcodec_train semcodec)

install(TARGETS ${_semcodec_libs} EXPORT semcodecTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/semcodec)
install(TARGETS semcodec_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Headers keep their layer folders (#include "codec/codec.h"); the CLI has none,
# and train/c10d_backend.h is private (it needs the c10d headers).
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/src/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/semcodec
        FILES_MATCHING PATTERN "*.h" PATTERN "cli" EXCLUDE PATTERN "c10d_backend.h" EXCLUDE)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/generated/semcodec_version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/semcodec)

install(EXPORT semcodecTargets NAMESPACE semcodec:: DESTINATION ${SEMCODEC_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/semcodecConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/semcodecConfig.cmake
                              INSTALL_DESTINATION ${SEMCODEC_INSTALL_CMAKEDIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/semcodecConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/semcodecConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/semcodecConfigVersion.cmake
        DESTINATION ${SEMCODEC_INSTALL_CMAKEDIR})
