//! The integration-test binary: every test that runs the built `crashfuzz` binary.
