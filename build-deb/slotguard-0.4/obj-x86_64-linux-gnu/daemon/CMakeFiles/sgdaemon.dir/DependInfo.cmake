
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/daemon/backoff.cpp" "daemon/CMakeFiles/sgdaemon.dir/backoff.cpp.o" "gcc" "daemon/CMakeFiles/sgdaemon.dir/backoff.cpp.o.d"
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/daemon/config.cpp" "daemon/CMakeFiles/sgdaemon.dir/config.cpp.o" "gcc" "daemon/CMakeFiles/sgdaemon.dir/config.cpp.o.d"
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/daemon/log.cpp" "daemon/CMakeFiles/sgdaemon.dir/log.cpp.o" "gcc" "daemon/CMakeFiles/sgdaemon.dir/log.cpp.o.d"
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/daemon/metrics.cpp" "daemon/CMakeFiles/sgdaemon.dir/metrics.cpp.o" "gcc" "daemon/CMakeFiles/sgdaemon.dir/metrics.cpp.o.d"
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/daemon/protocol.cpp" "daemon/CMakeFiles/sgdaemon.dir/protocol.cpp.o" "gcc" "daemon/CMakeFiles/sgdaemon.dir/protocol.cpp.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/obj-x86_64-linux-gnu/CMakeFiles/sgcore.dir/DependInfo.cmake"
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
