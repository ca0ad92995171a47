//! Test helpers: a hand-rolled zip writer that can produce archives no well-behaved library
//! would (escaping names, symlinks, duplicates, lying sizes).
#![allow(dead_code)]

use std::io::Write;

/// One entry, with every field under the test's control.
#[derive(Clone)]
pub struct RawEntry {
    pub name: Vec<u8>,
    /// Bytes as stored in the archive (already compressed for method 8).
    pub data: Vec<u8>,
    pub method: u16,
    pub crc: u32,
    pub size: u32,
    pub made_by: u16,
    pub external: u32,
}

pub fn stored(name: &str, content: &[u8]) -> RawEntry {
    RawEntry {
        name: name.as_bytes().to_vec(),
        data: content.to_vec(),
        method: 0,
        crc: crc32fast::hash(content),
        size: content.len() as u32,
        made_by: 20,
        external: 0,
    }
}

pub fn deflated(name: &str, content: &[u8]) -> RawEntry {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(content).unwrap();
    RawEntry {
        name: name.as_bytes().to_vec(),
        data: enc.finish().unwrap(),
        method: 8,
        crc: crc32fast::hash(content),
        size: content.len() as u32,
        made_by: 20,
        external: 0,
    }
}

/// Marks an entry as made on unix with the given st_mode.
pub fn with_mode(mut e: RawEntry, mode: u32) -> RawEntry {
    e.made_by = (3 << 8) | 20;
    e.external = mode << 16;
    e
}

pub fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]);
        out.extend_from_slice(&e.crc.to_le_bytes());
        out.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&e.made_by.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&e.method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&e.crc.to_le_bytes());
        central.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
        central.extend_from_slice(&e.size.to_le_bytes());
        central.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]);
        central.extend_from_slice(&e.external.to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(&e.name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A minimal valid WAR.
pub fn tiny_war() -> Vec<u8> {
    raw_zip(&[
        deflated("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\n\r\n"),
        deflated("WEB-INF/web.xml", b"<web-app/>\n"),
    ])
}
