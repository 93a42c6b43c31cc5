//! Integration tests of `airlock-layout` through its public API, the way a bundle's bytes
//! reach it from outside.

mod props;
