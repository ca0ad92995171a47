//! Checksum-verified, resumable downloads into the content-addressed cache.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha1::Digest as _;
use tokio::io::AsyncWriteExt;

use super::settings::Credentials;
use super::{FetchOptions, Resolved, SourceError};

/// An HTTP client with the credentials for one repository.
pub(super) struct Client {
    http: reqwest::Client,
    auth: Option<Credentials>,
    attempts: u32,
}

impl Client {
    pub(super) fn new(opts: &FetchOptions, url: &str) -> Result<Client, SourceError> {
        let auth = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => opts.settings.credentials_for(url)?,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SourceError::Unreachable {
                url: url.to_owned(),
                detail: e.to_string(),
            })?;
        Ok(Client {
            http,
            auth,
            attempts: opts.attempts.max(1),
        })
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, url)
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.auth {
            Some(c) => rb.basic_auth(&c.username, Some(&c.password)),
            None => rb,
        }
    }

    /// The body of a small document; `None` when it does not exist.
    pub(super) async fn get_text(&self, url: &str) -> Result<Option<String>, SourceError> {
        let resp = self
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable(url, &e))?;
        match resp.status().as_u16() {
            200 => resp
                .text()
                .await
                .map(Some)
                .map_err(|e| unreachable(url, &e)),
            404 => Ok(None),
            s => Err(http_error(url, s)),
        }
    }
}

fn unreachable(url: &str, e: &reqwest::Error) -> SourceError {
    SourceError::Unreachable {
        url: url.to_owned(),
        detail: crate::error_chain(e),
    }
}

fn http_error(url: &str, status: u16) -> SourceError {
    let hint = match status {
        401 | 403 => " (check the credentials: EP_MAVEN_USERNAME and EP_MAVEN_PASSWORD, or a \
                      <server> in ~/.m2/settings.xml with the repository's id)"
            .to_owned(),
        404 => " (not in the repository)".to_owned(),
        _ => String::new(),
    };
    SourceError::Http {
        url: url.to_owned(),
        status,
        hint,
    }
}

/// A published checksum: algorithm and lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Checksum {
    algo: &'static str,
    hex: String,
}

/// The first word of a checksum file (`<hex>` or `<hex>  <name>`), if it is one.
fn parse_checksum(text: &str, algo: &'static str, len: usize) -> Option<Checksum> {
    let hex = text.split_whitespace().next()?.to_ascii_lowercase();
    (hex.len() == len && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(Checksum { algo, hex })
}

async fn published_checksum(client: &Client, url: &str) -> Result<Checksum, SourceError> {
    for (ext, algo, len) in [(".sha256", "sha256", 64), (".sha1", "sha1", 40)] {
        let sum_url = format!("{url}{ext}");
        if let Some(text) = client.get_text(&sum_url).await? {
            return parse_checksum(&text, algo, len).ok_or_else(|| SourceError::BadDocument {
                what: sum_url,
                reason: format!("not a {algo} checksum"),
            });
        }
    }
    // Say so when the package itself is missing, rather than its checksum.
    let resp = client
        .request(reqwest::Method::HEAD, url)
        .send()
        .await
        .map_err(|e| unreachable(url, &e))?;
    if resp.status().as_u16() == 404 {
        return Err(http_error(url, 404));
    }
    Err(SourceError::NoChecksum {
        url: url.to_owned(),
    })
}

/// Fetches `url` into `cache_dir` unless the cache already holds the bytes
/// its published checksum names; verifies before keeping anything.
pub(super) async fn fetch_verified(
    client: &Client,
    url: &url::Url,
    cache_dir: &Path,
) -> Result<Resolved, SourceError> {
    let url_s = url.as_str();
    let sum = published_checksum(client, url_s).await?;
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("package.zip");
    let ext = name.rsplit_once('.').map_or("zip", |(_, e)| e);
    let cached = cache_dir.join(format!("{}-{}.{ext}", sum.algo, sum.hex));
    let resolved = |downloaded| Resolved {
        path: cached.clone(),
        url: Some(url_s.to_owned()),
        checksum: Some(format!("{}:{}", sum.algo, sum.hex)),
        downloaded,
    };
    if tokio::fs::metadata(&cached)
        .await
        .is_ok_and(|m| m.is_file())
    {
        return Ok(resolved(false));
    }
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(SourceError::io(cache_dir.display().to_string()))?;
    let partial = cache_dir.join(format!(
        ".partial-{}-{}-{}",
        sum.algo,
        sum.hex,
        std::process::id()
    ));
    let result = download(client, url_s, &partial).await;
    let verified = match result {
        Ok(()) => verify(&partial, &sum, url_s).await,
        Err(e) => Err(e),
    };
    match verified {
        Ok(()) => {
            tokio::fs::rename(&partial, &cached)
                .await
                .map_err(SourceError::io(cached.display().to_string()))?;
            Ok(resolved(true))
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

/// Downloads `url` to `to`, resuming with a range request after a broken
/// connection (or starting over when the server ignores ranges).
async fn download(client: &Client, url: &str, to: &PathBuf) -> Result<(), SourceError> {
    let mut last = None;
    for attempt in 0..client.attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        let have = tokio::fs::metadata(to).await.map(|m| m.len()).unwrap_or(0);
        let mut rb = client.get(url);
        if have > 0 {
            rb = rb.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let mut resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                last = Some(unreachable(url, &e));
                continue;
            }
        };
        let append = match resp.status().as_u16() {
            200 => false,
            206 if have > 0 => true,
            s => return Err(http_error(url, s)),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(to)
            .await
            .map_err(SourceError::io(to.display().to_string()))?;
        let mut broken = None;
        loop {
            match resp.chunk().await {
                Ok(Some(bytes)) => file
                    .write_all(&bytes)
                    .await
                    .map_err(SourceError::io(to.display().to_string()))?,
                Ok(None) => break,
                Err(e) => {
                    broken = Some(unreachable(url, &e));
                    break;
                }
            }
        }
        file.flush()
            .await
            .map_err(SourceError::io(to.display().to_string()))?;
        match broken {
            None => return Ok(()),
            // Retried; reported only when every attempt failed.
            Some(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| SourceError::Unreachable {
        url: url.to_owned(),
        detail: "no attempt made".into(),
    }))
}

async fn verify(path: &Path, sum: &Checksum, url: &str) -> Result<(), SourceError> {
    let path = path.to_path_buf();
    let algo = sum.algo;
    let actual = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut s256 = sha2::Sha256::new();
        let mut s1 = sha1::Sha1::new();
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if algo == "sha256" {
                s256.update(&buf[..n]);
            } else {
                s1.update(&buf[..n]);
            }
        }
        Ok(if algo == "sha256" {
            hex::encode(s256.finalize())
        } else {
            hex::encode(s1.finalize())
        })
    })
    .await
    .map_err(|e| SourceError::Io {
        what: "checksum".into(),
        source: std::io::Error::other(e.to_string()),
    })?
    .map_err(SourceError::io("reading the download"))?;
    if actual == sum.hex {
        Ok(())
    } else {
        Err(SourceError::ChecksumMismatch {
            url: url.to_owned(),
            expected: format!("{algo}:{}", sum.hex),
            actual: format!("{algo}:{actual}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_files() {
        let h = "AB".repeat(32);
        assert_eq!(
            parse_checksum(&format!("{h}  pkg.zip\n"), "sha256", 64),
            Some(Checksum {
                algo: "sha256",
                hex: h.to_ascii_lowercase()
            })
        );
        assert_eq!(parse_checksum("xyz", "sha256", 64), None);
        assert_eq!(parse_checksum(&"a".repeat(40), "sha256", 64), None);
        assert!(parse_checksum(&"a".repeat(40), "sha1", 40).is_some());
    }
}
