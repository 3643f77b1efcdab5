file(REMOVE_RECURSE
  "CMakeFiles/sgservice.dir/service.cpp.o"
  "CMakeFiles/sgservice.dir/service.cpp.o.d"
  "libsgservice.a"
  "libsgservice.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/sgservice.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
