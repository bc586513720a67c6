"""Pure business rules: no gRPC, no SQL, no XML; plain data in, plain data out."""
