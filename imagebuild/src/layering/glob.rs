//! Minimal glob matching for custom layer sources: `*` and `?` within one path component,
//! `**` as a whole component for any number of components. No character classes: package
//! paths are plain, and a small matcher is easier to reason about than a general one.

/// Whether `pattern` contains a wildcard.
pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// The components of `pattern` before the first one holding a wildcard, joined with `/`
/// (empty when the first component already has one). Matches are placed relative to it.
pub(crate) fn literal_prefix(pattern: &str) -> String {
    pattern
        .split('/')
        .take_while(|c| !has_wildcard(c))
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the `/`-separated `path` matches `pattern`.
pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let comps: Vec<&str> = path.split('/').collect();
    match_components(&pat, &comps)
}

fn match_components(pat: &[&str], comps: &[&str]) -> bool {
    match pat.split_first() {
        None => comps.is_empty(),
        Some((&"**", rest)) => (0..=comps.len()).any(|skip| match_components(rest, &comps[skip..])),
        Some((p, rest)) => match comps.split_first() {
            Some((c, crest)) => {
                match_component(p.as_bytes(), c.as_bytes()) && match_components(rest, crest)
            }
            None => false,
        },
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice, never
/// exponential whatever the pattern.
fn match_component(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("database/jdbc/*.jar", "database/jdbc/mysql-8.jar"));
        assert!(!matches(
            "database/jdbc/*.jar",
            "database/jdbc/x/mysql-8.jar"
        ));
        assert!(matches("tools/**/*.jar", "tools/activemq/lib/a.jar"));
        assert!(matches("tools/**/*.jar", "tools/a.jar"));
        assert!(matches(
            "webapps/*-cortex-?.war",
            "webapps/ext-cortex-1.war"
        ));
        assert!(!matches("webapps/*.war", "webapps/a.zip"));
        assert!(matches("**", "a/b/c"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert_eq!(literal_prefix("database/jdbc/*.jar"), "database/jdbc");
        assert_eq!(literal_prefix("*.jar"), "");
        assert!(has_wildcard("a/*") && !has_wildcard("a/b"));
    }
}
