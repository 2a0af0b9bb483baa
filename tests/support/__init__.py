"""What the tests share (and the benchmarks use): servers in processes, request helpers,
PostgreSQL of their own, a TCP proxy, the parity harness."""
