# Installs the shared library, the public headers and a CMake package config, so that
# find_package(reasonrt CONFIG) + target reasonrt::reasonrt work from the install prefix.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS reasonrt EXPORT reasonrtTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/reasonrt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/capi/include/reasonrt_c.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT reasonrtTargets NAMESPACE reasonrt::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/reasonrt)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/reasonrtConfig.cmake.in
  ${PROJECT_BINARY_DIR}/reasonrtConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/reasonrt)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/reasonrtConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/reasonrtConfig.cmake
              ${PROJECT_BINARY_DIR}/reasonrtConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/reasonrt)
