file(REMOVE_RECURSE
  "CMakeFiles/sgcore.dir/common/error_contract.cpp.o"
  "CMakeFiles/sgcore.dir/common/error_contract.cpp.o.d"
  "CMakeFiles/sgcore.dir/common/transition_rules.cpp.o"
  "CMakeFiles/sgcore.dir/common/transition_rules.cpp.o.d"
  "CMakeFiles/sgcore.dir/common/version_rules.cpp.o"
  "CMakeFiles/sgcore.dir/common/version_rules.cpp.o.d"
  "libsgcore.a"
  "libsgcore.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/sgcore.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
