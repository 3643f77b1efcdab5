file(REMOVE_RECURSE
  "CMakeFiles/slotguardd.dir/server.cpp.o"
  "CMakeFiles/slotguardd.dir/server.cpp.o.d"
  "CMakeFiles/slotguardd.dir/slotguardd.cpp.o"
  "CMakeFiles/slotguardd.dir/slotguardd.cpp.o.d"
  "slotguardd"
  "slotguardd.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/slotguardd.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
