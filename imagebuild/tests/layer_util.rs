//! Helpers shared by the layer_* tests (included with `#[path]`; as a test
//! crate of its own it has no tests).
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::Command;

use ep_imagebuild::digest::Digest;
use ep_imagebuild::layer::LayerOutput;

/// Decompresses a layer blob with Rust decoders.
pub fn decompress(out: &LayerOutput) -> Vec<u8> {
    let f = std::fs::File::open(&out.path).unwrap();
    let mut buf = Vec::new();
    if out.media_type.ends_with("+gzip") {
        // A single gzip member: the plain (single-member) decoder must read
        // it all.
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut buf)
            .unwrap();
    } else if out.media_type.ends_with("+zstd") {
        zstd::stream::read::Decoder::new(f)
            .unwrap()
            .read_to_end(&mut buf)
            .unwrap();
    } else {
        std::io::BufReader::new(f).read_to_end(&mut buf).unwrap();
    }
    buf
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks the blob with the CLI tools and the tar with GNU tar and Python's
/// tarfile; returns `tar -tvf` output.
pub fn strict_check(out: &LayerOutput, scratch: &Path) -> String {
    let tar = decompress(out);
    assert_eq!(Digest::of(&tar), out.diff_id, "diff_id is the tar's sha256");
    assert_eq!(tar.len() as u64, out.uncompressed_size);
    let blob = std::fs::read(&out.path).unwrap();
    assert_eq!(Digest::of(&blob), out.digest);
    assert_eq!(blob.len() as u64, out.size);
    if out.media_type.ends_with("+gzip") {
        run(Command::new("gzip").arg("-t").arg(&out.path));
        // The CLI decodes to the same bytes.
        let cli = Command::new("gzip")
            .arg("-dc")
            .arg(&out.path)
            .output()
            .unwrap();
        assert!(cli.status.success());
        assert_eq!(Digest::of(&cli.stdout), out.diff_id);
    } else if out.media_type.ends_with("+zstd") {
        run(Command::new("zstd").arg("-q").arg("-t").arg(&out.path));
    }
    let tar_path = scratch.join(format!("{}.tar", out.diff_id.hex()));
    std::fs::write(&tar_path, &tar).unwrap();
    let gnu = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-tvf")
        .arg(&tar_path)
        .output()
        .unwrap();
    assert!(
        gnu.status.success() && gnu.stderr.is_empty(),
        "GNU tar: {}",
        String::from_utf8_lossy(&gnu.stderr)
    );
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, tarfile\n\
         t = tarfile.open(sys.argv[1], errorlevel=2)\n\
         ms = t.getmembers()\n\
         assert ms, 'no members'\n",
        )
        .arg(&tar_path));
    String::from_utf8_lossy(&gnu.stdout).into_owned()
}

/// Entries of an uncompressed tar as (path, type byte, mode, uid, gid,
/// mtime, link, content).
pub type Entry = (String, u8, u32, u64, u64, u64, String, Vec<u8>);

/// Reads back a tar with the `tar` crate.
pub fn read_tar(bytes: &[u8]) -> Vec<Entry> {
    let mut a = tar::Archive::new(bytes);
    let mut v = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().to_str().unwrap().to_owned();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        v.push((
            path,
            h.entry_type().as_byte(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            link,
            data,
        ));
    }
    v
}
