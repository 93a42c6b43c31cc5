//! A blob read from the source registry while it is uploaded to the target, hashed on the
//! way. The last chunk is held back until every byte hashed to the digest: when they do not,
//! the stream ends with an error instead, so the request carrying the blob's end never
//! completes and the target never commits the blob.

use std::io;

use airlock_layout::{Digest, Hasher};
use airlock_registry::{BlobStream, Client};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};

/// Where the blob is read from.
#[derive(Clone)]
pub(crate) struct From {
    pub(crate) client: Client,
    pub(crate) host: String,
    pub(crate) repository: String,
}

struct State {
    from: From,
    digest: Digest,
    size: u64,
    offset: u64,
    body: Option<BlobStream>,
    hasher: Hasher,
    pos: u64,
    held: Option<Bytes>,
    done: bool,
}

/// The blob `digest` of `size` bytes from `offset` to its end. The source is always read
/// from the start: bytes before `offset` (an upload that resumes) are hashed, not yielded.
pub(crate) fn verified(
    from: From,
    digest: Digest,
    size: u64,
    offset: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let state = State {
        from,
        digest,
        size,
        offset,
        body: None,
        hasher: Hasher::new(),
        pos: 0,
        held: None,
        done: false,
    };
    futures_util::stream::unfold(state, next)
}

async fn next(mut st: State) -> Option<(io::Result<Bytes>, State)> {
    if st.done {
        return None;
    }
    if st.body.is_none() {
        let f = &st.from;
        match f
            .client
            .get_blob(&f.host, &f.repository, &st.digest.to_string(), 0)
            .await
        {
            Ok(resp) => st.body = Some(resp.stream),
            Err(e) => return fail(st, io::Error::other(e)),
        }
    }
    loop {
        let item = st.body.as_mut().expect("opened above").next().await;
        match item {
            Some(Ok(chunk)) => {
                let n = chunk.len() as u64;
                st.hasher.update(&chunk);
                let start = st.offset.saturating_sub(st.pos).min(n) as usize;
                st.pos += n;
                if st.pos > st.size {
                    let e = mismatch(&st, "more bytes than its descriptor states");
                    return fail(st, e);
                }
                if start < chunk.len() {
                    if let Some(prev) = st.held.replace(chunk.slice(start..)) {
                        return Some((Ok(prev), st));
                    }
                }
            }
            Some(Err(e)) => return fail(st, io::Error::other(e)),
            None => {
                st.done = true;
                let actual = std::mem::take(&mut st.hasher).finish();
                if st.pos != st.size || actual != st.digest {
                    let e = mismatch(&st, &format!("{} bytes hashing to `{actual}`", st.pos));
                    return Some((Err(e), st));
                }
                return st.held.take().map(|last| (Ok(last), st));
            }
        }
    }
}

fn fail(mut st: State, e: io::Error) -> Option<(io::Result<Bytes>, State)> {
    st.done = true;
    Some((Err(e), st))
}

fn mismatch(st: &State, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the source `{}/{}` sent {what}, not the blob `{}` of {} bytes; it was not committed at the target",
            st.from.host, st.from.repository, st.digest, st.size
        ),
    )
}
