file(REMOVE_RECURSE
  "libsgcore.a"
)
