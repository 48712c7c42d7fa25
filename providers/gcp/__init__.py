"""Google Cloud: backend services and managed instance groups through the Compute Engine API,
records through Cloud DNS, with the real client libraries (pointed at the emulator on a laptop
and in tests). Its references (``refs``), topology bindings (``bindings``), clients, error
translation, operations and the implementation of each resource kind live here."""
