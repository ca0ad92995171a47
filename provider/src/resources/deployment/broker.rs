//! Amazon MQ (ActiveMQ) rules that are known before any call: the
//! credentials the broker accepts and how engine versions compare.

/// Why Amazon MQ would refuse `password` for an ActiveMQ user, if it would.
pub fn check_password(password: &str) -> Option<String> {
    let n = password.chars().count();
    if !(12..=250).contains(&n) {
        return Some(format!("must have 12 to 250 characters (it has {n})"));
    }
    if password.contains(',') {
        return Some("must not contain a comma".to_owned());
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Some(format!(
            "must contain at least 4 different characters (it has {})",
            distinct.len()
        ));
    }
    None
}

/// Why Amazon MQ would refuse `username` for an ActiveMQ user, if it would.
pub fn check_username(username: &str) -> Option<String> {
    let n = username.chars().count();
    if !(2..=100).contains(&n) {
        return Some(format!("must have 2 to 100 characters (it has {n})"));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
    {
        return Some("may hold only letters, digits, '-', '.', '_' and '~'".to_owned());
    }
    None
}

/// An ActiveMQ engine version as `major.minor`, the part a user asks for:
/// AWS reports `5.18.4` for a broker created with `5.18`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EngineVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl EngineVersion {
    /// Parses `5.18`, `5.18.4` or `5.17.6`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        match parts.next() {
            Some(patch) if patch.parse::<u32>().is_err() => return None,
            _ => {}
        }
        if parts.next().is_some() {
            return None;
        }
        Some(EngineVersion { major, minor })
    }

    /// From 5.18 on, Amazon MQ manages patch versions itself and requires
    /// automatic minor version upgrades.
    pub fn requires_auto_minor_upgrade(self) -> bool {
        self >= EngineVersion {
            major: 5,
            minor: 18,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_follow_amazon_mq_rules() {
        assert_eq!(check_password("correct-horse-battery"), None);
        assert!(check_password("short-pw")
            .unwrap_or_default()
            .contains("12 to 250"));
        assert!(check_password(&"x".repeat(251)).is_some());
        assert!(check_password("abcabcabcabcabc")
            .unwrap_or_default()
            .contains("4 different"));
        assert!(check_password("has,a,comma,inside")
            .unwrap_or_default()
            .contains("comma"));
        // Counted in characters, not bytes.
        assert_eq!(check_password("ééééééabcdef"), None);
    }

    #[test]
    fn usernames_follow_amazon_mq_rules() {
        assert_eq!(check_username("ep-admin"), None);
        assert!(check_username("a").is_some());
        assert!(check_username("with space").is_some());
    }

    #[test]
    fn versions_parse_as_major_and_minor() {
        let v = |s| EngineVersion::parse(s);
        assert_eq!(v("5.18.4"), v("5.18"));
        assert_ne!(v("5.17"), v("5.18.4"));
        assert_eq!(v("5.18.x"), None);
        assert_eq!(v("5"), None);
        assert_eq!(v("5.18.4.1"), None);
    }

    #[test]
    fn auto_minor_upgrade_is_required_from_5_18() {
        let v = |s| EngineVersion::parse(s).map(EngineVersion::requires_auto_minor_upgrade);
        assert_eq!(v("5.17.6"), Some(false));
        assert_eq!(v("5.18"), Some(true));
        assert_eq!(v("6.0"), Some(true));
    }
}
