file(REMOVE_RECURSE
  "CMakeFiles/slotguardctl.dir/slotguardctl.cpp.o"
  "CMakeFiles/slotguardctl.dir/slotguardctl.cpp.o.d"
  "slotguardctl"
  "slotguardctl.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/slotguardctl.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
