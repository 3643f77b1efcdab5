file(REMOVE_RECURSE
  "libsgservice.a"
)
