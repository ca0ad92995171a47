//! Entry-name validation shared by zip and directory sources.

/// Checks that `name` (a zip entry name, `/`-separated, optional trailing `/` for directories)
/// stays inside the extraction root and is portable. Returns the reason when it does not.
pub(crate) fn check_entry_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty name");
    }
    if name.contains('\0') {
        return Err("contains a NUL byte");
    }
    // Windows-made zips use backslashes as separators; on extraction they could become
    // separators again, so `a\..\..\x` is as dangerous as `a/../../x`.
    if name.contains('\\') {
        return Err("contains a backslash");
    }
    if name.starts_with('/') {
        return Err("absolute path");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("starts with a drive letter");
    }
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty name");
    }
    for component in trimmed.split('/') {
        match component {
            "" => return Err("empty path component (`//`)"),
            "." => return Err("`.` path component"),
            ".." => return Err("`..` path component escapes the package"),
            _ => {}
        }
    }
    Ok(())
}

/// The name without a trailing `/`, the form used for lookups and duplicate checks.
pub(crate) fn normalize(name: &str) -> &str {
    name.strip_suffix('/').unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "webapps/a.war",
            "WEB-INF/",
            "a/b/c.class",
            "x..y/z",
            "...",
            "a/.hidden",
        ] {
            assert_eq!(check_entry_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_escapes() {
        for bad in [
            "",
            "/",
            "../evil",
            "a/../../b",
            "/etc/passwd",
            "C:\\x",
            "c:/x",
            "a\\b",
            "a//b",
            "./a",
            "a/./b",
            "..",
            "a/..",
            "a\0b",
        ] {
            assert!(check_entry_name(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn accepted_names_never_escape(name in "[a-z./\\\\:]{0,12}") {
            if check_entry_name(&name).is_ok() {
                let mut depth: i32 = 0;
                for c in normalize(&name).split('/') {
                    if c == ".." { depth -= 1 } else { depth += 1 }
                    proptest::prop_assert!(depth >= 0);
                }
                proptest::prop_assert!(!name.starts_with('/') && !name.contains('\\'));
            }
        }
    }
}
