//! The image reference grammar (`[host[:port]/]path[:tag][@digest]`, Docker
//! Hub defaults) read by hand, giving `oci-client`'s [`Reference`].
//!
//! `oci-client` (through `oci-spec`) parses with one regular expression whose
//! Unicode tag class repeated 128 times takes ~0.1 s of CPU to compile, on
//! first use in every process. Terraform starts a provider process per
//! command phase, and that compile sat on every plan's critical path; this
//! reader costs microseconds. It accepts what that expression accepts and
//! fails with the same [`ParseError`] — checked against it by the tests —
//! except that a tag is ASCII, as the distribution spec says (the
//! expression's `\w` also admits other alphabets, which no registry takes).

use oci_client::{ParseError, Reference};

/// A repository path longer than this is refused (the distribution spec's limit).
const REPOSITORY_MAX: usize = 255;
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_LEGACY: &str = "index.docker.io";

/// Parses `s` as an image reference; a reference with neither tag nor
/// digest gets the tag `latest`.
pub fn parse(s: &str) -> Result<Reference, ParseError> {
    if s.is_empty() {
        return Err(ParseError::NameEmpty);
    }
    let (named, digest) = match s.split_once('@') {
        Some((named, digest)) if valid_digest_syntax(digest) => (named, Some(digest)),
        Some(_) => return Err(ParseError::ReferenceInvalidFormat),
        None => (s, None),
    };
    // A `:` after the last `/` starts the tag; one before it is a port.
    let last_part = named.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match named[last_part..].find(':') {
        Some(i) => {
            let (name, tag) = (&named[..last_part + i], &named[last_part + i + 1..]);
            if !valid_tag(tag) {
                return Err(ParseError::ReferenceInvalidFormat);
            }
            (name, Some(tag))
        }
        None => (named, None),
    };
    if !valid_name(name) {
        return Err(ParseError::ReferenceInvalidFormat);
    }
    let (registry, repository) = split_registry(name);
    if repository.len() > REPOSITORY_MAX {
        return Err(ParseError::NameTooLong);
    }
    if let Some(digest) = digest {
        check_digest_algorithm(digest)?;
    }
    let (tag, digest) = (tag.map(str::to_owned), digest.map(str::to_owned));
    Ok(match (tag, digest) {
        (Some(t), Some(d)) => Reference::with_tag_and_digest(registry, repository, t, d),
        (None, Some(d)) => Reference::with_digest(registry, repository, d),
        (t, None) => Reference::with_tag(registry, repository, t.unwrap_or("latest".into())),
    })
}

/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/…)*`, at most 255 characters.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= REPOSITORY_MAX && name.split('/').all(valid_path_component)
}

/// A name is path components, optionally after a registry host: the
/// grammar lets the first component be read either way.
fn valid_name(name: &str) -> bool {
    if name.split('/').all(valid_path_component) {
        return true;
    }
    match name.split_once('/') {
        Some((host, path)) => valid_host(host) && path.split('/').all(valid_path_component),
        None => false,
    }
}

/// `[a-z0-9]+((\.|_|__|-*)[a-z0-9]+)*`: runs of lower-case letters and
/// digits joined by `.`, `_`, `__` or any number of `-`.
fn valid_path_component(comp: &str) -> bool {
    let b = comp.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    comp.split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .all(|sep| {
            sep.is_empty()
                || sep == "."
                || sep == "_"
                || sep == "__"
                || sep.bytes().all(|c| c == b'-')
        })
}

/// `label(.label)*(:[0-9]+)?`, a label being letters, digits and inner `-`.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    name.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// `algorithm:hex`, the algorithm being `[A-Za-z][A-Za-z0-9]*` parts joined
/// by one of `-_+.`, and at least 32 hexadecimal digits.
fn valid_digest_syntax(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let part_ok = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    };
    algorithm.split(['-', '_', '+', '.']).all(part_ok)
        && hex.len() >= 32
        && hex.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Only the SHA-2 digests, each with its own length.
fn check_digest_algorithm(digest: &str) -> Result<(), ParseError> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or(ParseError::DigestInvalidFormat)?;
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ParseError::DigestUnsupported),
    };
    if hex.len() == want {
        Ok(())
    } else {
        Err(ParseError::DigestInvalidLength)
    }
}

/// A name's registry host, if it names one, and the rest. Docker's rule: a
/// first component with a `.` or `:`, or `localhost`, is a host; otherwise
/// the whole name is a path.
pub fn split_host(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// [`split_host`] with Docker Hub's defaults: no host is Docker Hub, where a
/// lone name is an official (`library/`) image.
fn split_registry(name: &str) -> (String, String) {
    let (registry, path) = split_host(name);
    let mut registry = registry.unwrap_or(DOCKER_HUB);
    if registry == DOCKER_HUB_LEGACY {
        registry = DOCKER_HUB;
    }
    let repository = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    (registry.to_owned(), repository)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `oci-spec`'s regular expression makes of `s`.
    fn by_regex(s: &str) -> Result<Reference, ParseError> {
        s.parse()
    }

    #[test]
    fn known_references() {
        let hex64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        for (input, registry, repository, tag, digest) in [
            (
                "busybox",
                "docker.io",
                "library/busybox",
                Some("latest"),
                None,
            ),
            ("index.docker.io/x/y:1", "docker.io", "x/y", Some("1"), None),
            ("host:5000", "docker.io", "library/host", Some("5000"), None),
            (
                "host:5000/ep/app",
                "host:5000",
                "ep/app",
                Some("latest"),
                None,
            ),
            (
                "localhost/app:v_1.0-rc",
                "localhost",
                "app",
                Some("v_1.0-rc"),
                None,
            ),
            ("foo/bar", "docker.io", "foo/bar", Some("latest"), None),
            (
                "Reg-1.Example/a__b--c.d",
                "Reg-1.Example",
                "a__b--c.d",
                Some("latest"),
                None,
            ),
        ] {
            let r = parse(input).unwrap();
            assert_eq!(
                (r.registry(), r.repository(), r.tag(), r.digest()),
                (registry, repository, tag, digest),
                "{input}"
            );
            assert_eq!(Ok(r), by_regex(input), "{input}");
        }
        let pinned = format!("127.0.0.1:5001/ep/app:1@sha256:{hex64}");
        let r = parse(&pinned).unwrap();
        assert_eq!(
            (r.tag(), r.digest()),
            (Some("1"), Some(&pinned[pinned.len() - 71..]))
        );
        for (input, err) in [
            ("", ParseError::NameEmpty),
            (":tag", ParseError::ReferenceInvalidFormat),
            ("upper/X", ParseError::ReferenceInvalidFormat),
            ("a/b:c:d", ParseError::ReferenceInvalidFormat),
            ("a___b", ParseError::ReferenceInvalidFormat),
            (
                "app@sha256:abcdef0123456789abcdef0123456789",
                ParseError::DigestInvalidLength,
            ),
            (
                "app@md5:abcdef0123456789abcdef0123456789",
                ParseError::DigestUnsupported,
            ),
        ] {
            assert_eq!(parse(input).unwrap_err(), err, "{input}");
            assert_eq!(by_regex(input).unwrap_err(), err, "{input}");
        }
        assert_eq!(parse(&"a".repeat(256)), Err(ParseError::NameTooLong));
    }

    #[test]
    fn tags_are_ascii() {
        assert_eq!(parse("app:größe"), Err(ParseError::ReferenceInvalidFormat));
    }

    /// Fragments that, strung together, reach every branch of the grammar
    /// and most ways of breaking it.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{1,4}",
            "[A-Za-z0-9-]{1,5}",
            "[._+-]{1,3}",
            "[0-9]{1,5}",
            digest(),
            Just("/".to_owned()),
            Just(":".to_owned()),
            Just("@".to_owned()),
            Just("__".to_owned()),
            Just("localhost".to_owned()),
            Just("index.docker.io".to_owned()),
            "[A-Za-z0-9-]{1,4}(\\.[a-z0-9-]{1,3}){0,2}(:[0-9a-z]{0,3})?/",
        ]
    }

    /// `@algorithm:hex`, the hex at or next to the lengths that matter.
    fn digest() -> impl Strategy<Value = String> {
        let algorithm = prop_oneof![
            Just("sha256"),
            Just("sha384"),
            Just("sha512"),
            Just("md5"),
            Just("sha256+b64u"),
            Just("1sha"),
        ];
        let length = prop_oneof![31..34usize, 63..66usize, 95..98usize, 127..130usize];
        (algorithm, length, "[0-9a-fA-Fg]").prop_map(|(a, n, filler)| {
            let hex: String = "0123456789abcdefABCDEF"
                .chars()
                .cycle()
                .take(n - 1)
                .collect();
            format!("@{a}:{hex}{filler}")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn agrees_with_the_regular_expression(parts in proptest::collection::vec(fragment(), 0..9)) {
            let s = parts.concat();
            prop_assert_eq!(parse(&s), by_regex(&s), "{}", s);
        }
    }
}
