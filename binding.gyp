{
  "targets": [
    {
      "target_name": "drover_netsock",
      "sources": ["native/netsock.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
