//! Deterministic tar header encoding: POSIX ustar, with a PAX extended
//! header only when a field does not fit (long paths or link targets, sizes of
//! 8 GiB and more, large ids). Everything that could vary between machines
//! (user and group names, device numbers, access times) is fixed or absent.

/// Size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// The largest value an 11-digit octal field holds.
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// The largest value a 7-digit octal field holds.
const MAX_OCTAL_7: u64 = 0o777_7777;

/// The kind of a tar entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
}

impl Kind {
    fn typeflag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
        }
    }
}

/// One header to encode. `path` is normalised and has no trailing slash.
pub(crate) struct Header<'a> {
    pub path: &'a str,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub link: &'a str,
    pub mtime: u64,
}

/// Appends the header blocks (a PAX header first when needed) to `out`.
pub(crate) fn encode(h: &Header<'_>, out: &mut Vec<u8>) {
    let name = if h.kind == Kind::Dir {
        format!("{}/", h.path)
    } else {
        h.path.to_owned()
    };
    let mut pax = Vec::new();
    let split = split_name(&name);
    if split.is_none() {
        pax_record(&mut pax, "path", &name);
    }
    if h.link.len() > 100 {
        pax_record(&mut pax, "linkpath", h.link);
    }
    if h.size > MAX_OCTAL_11 {
        pax_record(&mut pax, "size", &h.size.to_string());
    }
    if h.uid > MAX_OCTAL_7 {
        pax_record(&mut pax, "uid", &h.uid.to_string());
    }
    if h.gid > MAX_OCTAL_7 {
        pax_record(&mut pax, "gid", &h.gid.to_string());
    }
    if h.mtime > MAX_OCTAL_11 {
        pax_record(&mut pax, "mtime", &h.mtime.to_string());
    }
    if !pax.is_empty() {
        // A fixed name: GNU tar's default embeds the process id.
        let block = raw_header(
            "././@PaxHeader",
            "",
            b'x',
            0o644,
            0,
            0,
            pax.len() as u64,
            h.mtime.min(MAX_OCTAL_11),
            "",
        );
        out.extend_from_slice(&block);
        out.extend_from_slice(&pax);
        out.resize(out.len() + padding(pax.len() as u64), 0);
    }
    let (prefix, short) = split.unwrap_or(("", truncate(&name, 100)));
    let link = truncate(h.link, 100);
    let block = raw_header(
        short,
        prefix,
        h.kind.typeflag(),
        h.mode & 0o7777,
        h.uid.min(MAX_OCTAL_7),
        h.gid.min(MAX_OCTAL_7),
        if h.size > MAX_OCTAL_11 { 0 } else { h.size },
        h.mtime.min(MAX_OCTAL_11),
        link,
    );
    out.extend_from_slice(&block);
}

/// Zero bytes needed after `len` bytes of data to reach a block boundary.
pub(crate) fn padding(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 {
        0
    } else {
        BLOCK - rem
    }
}

/// The end-of-archive marker: two zero blocks (umoci once forgot them).
pub(crate) const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Splits a name into ustar `prefix` (≤155 bytes) and `name` (≤100 bytes)
/// at a slash, or `None` when it cannot be represented without PAX.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    // A directory's trailing slash must stay in the name part; search for the
    // split slash before it.
    let search_end = name.len() - 1;
    let bytes = name.as_bytes();
    // The leftmost slash that leaves ≤100 bytes for the name keeps the prefix
    // shortest; the first one that also fits the prefix wins.
    for i in 0..search_end {
        if bytes[i] == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0 {
            return Some((&name[..i], &name[i + 1..]));
        }
    }
    None
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary (only used when the full value is also in a PAX record).
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn pax_record(out: &mut Vec<u8>, key: &str, value: &str) {
    // "<len> <key>=<value>\n" where len counts its own digits.
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

#[allow(clippy::too_many_arguments)]
fn raw_header(
    name: &str,
    prefix: &str,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &str,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    put_str(&mut b[0..100], name);
    put_octal(&mut b[100..108], u64::from(mode));
    put_octal(&mut b[108..116], uid);
    put_octal(&mut b[116..124], gid);
    put_octal(&mut b[124..136], size);
    put_octal(&mut b[136..148], mtime);
    b[156] = typeflag;
    put_str(&mut b[157..257], link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    put_octal(&mut b[329..337], 0);
    put_octal(&mut b[337..345], 0);
    put_str(&mut b[345..500], prefix);
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    b
}

fn put_str(field: &mut [u8], s: &str) {
    let n = s.len().min(field.len());
    field[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// Zero-padded octal, NUL-terminated; callers keep values within the field.
fn put_octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    let n = s.len().min(digits);
    field[..n].copy_from_slice(&s.as_bytes()[s.len() - n..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_lengths_count_themselves() {
        for n in [0usize, 1, 5, 90, 95, 96, 97, 990, 995, 1000] {
            let mut out = Vec::new();
            let v = "x".repeat(n);
            pax_record(&mut out, "path", &v);
            let s = String::from_utf8(out).unwrap();
            let (len, _) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), s.len());
        }
    }

    #[test]
    fn splits_long_names_at_a_slash() {
        let long = format!("{}/{}", "a".repeat(120), "b".repeat(90));
        assert_eq!(split_name(&long), Some((&long[..120], &long[121..])));
        assert_eq!(split_name(&"c".repeat(101)), None);
        let dir = format!("{}/", "d".repeat(100));
        assert_eq!(split_name(&dir), None);
    }
}
