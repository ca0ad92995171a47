//! Streaming a blob body from disk while hashing it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest as _, Sha256};
use tokio_util::io::ReaderStream;

use crate::digest::Digest;

/// Read size for upload bodies.
const READ_CHUNK: usize = 256 * 1024;

/// What a finished [`VerifyingStream`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The stream has not reached its end.
    Incomplete,
    /// Size and digest matched.
    Ok,
    /// Wrong size (the file changed or was declared wrongly).
    Size { actual: u64 },
    /// Wrong digest.
    Digest { actual: Digest },
}

/// A file body that hashes what it yields and, at the end, fails the
/// request instead of finishing it when the bytes do not match the declared
/// digest and size: a truncated body is never committed by a registry, so
/// nothing wrong gets stored even before the registry's own check.
pub(crate) struct VerifyingStream {
    inner: ReaderStream<tokio::fs::File>,
    hasher: Sha256,
    seen: u64,
    expected_size: u64,
    expected_digest: Digest,
    verdict: Arc<Mutex<Verdict>>,
    finished: bool,
}

impl VerifyingStream {
    pub(crate) fn new(
        file: tokio::fs::File,
        expected_digest: Digest,
        expected_size: u64,
    ) -> (Self, Arc<Mutex<Verdict>>) {
        let verdict = Arc::new(Mutex::new(Verdict::Incomplete));
        (
            VerifyingStream {
                inner: ReaderStream::with_capacity(file, READ_CHUNK),
                hasher: Sha256::new(),
                seen: 0,
                expected_size,
                expected_digest,
                verdict: verdict.clone(),
                finished: false,
            },
            verdict,
        )
    }

    /// Compares the hash with the declared digest and records the verdict.
    fn finish(&mut self) -> Result<(), std::io::Error> {
        let actual = Digest::from_sha256(std::mem::take(&mut self.hasher).finalize().into());
        if actual != self.expected_digest {
            self.record(Verdict::Digest { actual });
            return Err(std::io::Error::other("blob digest mismatch"));
        }
        self.record(Verdict::Ok);
        Ok(())
    }

    fn record(&self, v: Verdict) {
        if let Ok(mut g) = self.verdict.lock() {
            *g = v;
        }
    }
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.expected_size {
                    let actual = self.seen;
                    self.finished = true;
                    self.record(Verdict::Size { actual });
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "blob larger than declared",
                    ))));
                }
                self.hasher.update(&chunk);
                if self.seen == self.expected_size {
                    // HTTP clients stop polling once Content-Length bytes are
                    // out, so verify here, before the last chunk is released.
                    self.finished = true;
                    return Poll::Ready(Some(self.finish().map(|()| chunk)));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finished = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finished = true;
                if self.seen != self.expected_size {
                    let actual = self.seen;
                    self.record(Verdict::Size { actual });
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "blob smaller than declared",
                    ))));
                }
                // Only an empty blob gets here (otherwise the last chunk finished it).
                match self.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.expected_size.saturating_sub(self.seen);
        (0, usize::try_from(left).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    async fn drain(path: &std::path::Path, d: Digest, size: u64) -> (u64, bool, Verdict) {
        let f = tokio::fs::File::open(path).await.unwrap();
        let (mut s, v) = VerifyingStream::new(f, d, size);
        let mut n = 0;
        let mut err = false;
        while let Some(c) = s.next().await {
            match c {
                Ok(b) => n += b.len() as u64,
                Err(_) => err = true,
            }
        }
        let verdict = v.lock().unwrap().clone();
        (n, err, verdict)
    }

    #[tokio::test]
    async fn verifies_digest_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        let data = vec![7u8; 700_000];
        std::fs::write(&p, &data).unwrap();
        let d = Digest::of(&data);
        assert_eq!(
            drain(&p, d.clone(), 700_000).await,
            (700_000, false, Verdict::Ok)
        );
        let (_, err, v) = drain(&p, Digest::of(b"x"), 700_000).await;
        assert!(err);
        assert_eq!(v, Verdict::Digest { actual: d.clone() });
        let (_, err, v) = drain(&p, d.clone(), 800_000).await;
        assert!(err && v == Verdict::Size { actual: 700_000 });
        let (_, err, v) = drain(&p, d, 100).await;
        assert!(err && matches!(v, Verdict::Size { .. }));
        let e = dir.path().join("e");
        std::fs::write(&e, b"").unwrap();
        assert_eq!(drain(&e, Digest::of(b""), 0).await, (0, false, Verdict::Ok));
        let (_, err, v) = drain(&e, Digest::of(b"x"), 0).await;
        assert!(err && matches!(v, Verdict::Digest { .. }));
    }
}
