file(REMOVE_RECURSE
  "CMakeFiles/sgdaemon.dir/backoff.cpp.o"
  "CMakeFiles/sgdaemon.dir/backoff.cpp.o.d"
  "CMakeFiles/sgdaemon.dir/config.cpp.o"
  "CMakeFiles/sgdaemon.dir/config.cpp.o.d"
  "CMakeFiles/sgdaemon.dir/log.cpp.o"
  "CMakeFiles/sgdaemon.dir/log.cpp.o.d"
  "CMakeFiles/sgdaemon.dir/metrics.cpp.o"
  "CMakeFiles/sgdaemon.dir/metrics.cpp.o.d"
  "CMakeFiles/sgdaemon.dir/protocol.cpp.o"
  "CMakeFiles/sgdaemon.dir/protocol.cpp.o.d"
  "libsgdaemon.a"
  "libsgdaemon.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang CXX)
  include(CMakeFiles/sgdaemon.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
