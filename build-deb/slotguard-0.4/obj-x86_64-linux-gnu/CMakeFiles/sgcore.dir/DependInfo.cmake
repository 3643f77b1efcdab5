
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/common/error_contract.cpp" "CMakeFiles/sgcore.dir/common/error_contract.cpp.o" "gcc" "CMakeFiles/sgcore.dir/common/error_contract.cpp.o.d"
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/common/transition_rules.cpp" "CMakeFiles/sgcore.dir/common/transition_rules.cpp.o" "gcc" "CMakeFiles/sgcore.dir/common/transition_rules.cpp.o.d"
  "/work/wt/lead-pkg/build-deb/slotguard-0.4/common/version_rules.cpp" "CMakeFiles/sgcore.dir/common/version_rules.cpp.o" "gcc" "CMakeFiles/sgcore.dir/common/version_rules.cpp.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
