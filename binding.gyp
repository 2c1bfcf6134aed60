{
  "targets": [
    {
      "target_name": "drover_netsock",
      "sources": ["native/netsock.c", "native/tftp_engine.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
