file(REMOVE_RECURSE
  "libsgdaemon.a"
)
