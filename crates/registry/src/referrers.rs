//! Which registries have the OCI 1.1 referrers API, learnt once per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::{Client, Error, Referrers};

/// What [`ReferrersApi::lookup`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Lookup {
    /// The registry has the referrers API: its index of the subject's referrers (`None`
    /// when it answered 404 for this subject after showing that it has the API).
    Api(Option<Referrers>),
    /// The registry has no referrers API (its first answer was a 404): its referrers are
    /// under the referrers tag schema (`sha256-<hex>`), if anywhere.
    NoApi,
    /// The registry's first answer was an error: it is taken to have no API for the rest of
    /// the run. The error goes to this caller alone, to be said once.
    NoApiAfter(Error),
}

/// Which registries have the referrers API, learnt from each one's first answer and not
/// asked again: the first caller for a registry asks, callers for the same registry meanwhile
/// wait for that answer, and later callers ask only registries that have the API.
#[derive(Debug, Default)]
pub struct ReferrersApi {
    hosts: Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
}

impl ReferrersApi {
    /// The referrers of `digest` in `registry/repository` through the referrers API
    /// ([`Client::referrers`]), when the registry has one. An error is returned only by a
    /// registry that has shown it has the API.
    pub async fn lookup(
        &self,
        client: &Client,
        registry: &str,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Lookup, Error> {
        let cell = self
            .hosts
            .lock()
            .expect("referrers API lock")
            .entry(registry.to_string())
            .or_default()
            .clone();
        let ask = || client.referrers(registry, repository, digest, artifact_type);
        let mut first = None;
        let has_api = *cell
            .get_or_init(|| async {
                let answer = ask().await;
                let has = matches!(answer, Ok(Some(_)));
                first = Some(answer);
                has
            })
            .await;
        match (first, has_api) {
            (Some(Ok(r)), true) => Ok(Lookup::Api(r)),
            (Some(Err(e)), _) => Ok(Lookup::NoApiAfter(e)),
            (Some(Ok(_)), false) | (None, false) => Ok(Lookup::NoApi),
            (None, true) => ask().await.map(Lookup::Api),
        }
    }
}
