//! End-to-end tests: the `airlock` binary against real servers (Debian's docker-registry in
//! four variants, containerd, skopeo as the independent reader). Every test starts its own
//! servers on free loopback ports through `airlock-testkit`.

mod artifacts;
mod bundle;
mod bundle_safety;
mod completions;
mod containerd;
mod content;
mod content_offline;
mod crafted;
mod delta;
mod errors;
mod inspect;
mod inventory;
mod kubernetes;
mod load;
mod outdated;
mod ratelimit;
mod restore;
mod rooms;
mod serve;
mod sign;
mod split;
mod supply_chain;
mod support;
mod sync;
mod upstream;
mod verify;
mod workloads;
