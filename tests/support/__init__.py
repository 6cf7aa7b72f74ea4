"""What the tests (and the benchmarks) build on: real servers as fixtures, config and page builders."""
