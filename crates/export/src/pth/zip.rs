//! An uncompressed ("stored") zip archive, as `torch.save` writes it: every record's data
//! starts at a multiple of 64 bytes (padding in the local header's extra field, id "FB"),
//! so that `torch.load(mmap=True)` can map storages in place.

use anyhow::{ensure, Result};

const ALIGNMENT: usize = 64;
const LOCAL_HEADER: usize = 30;
/// Extra field id PyTorch pads with ("FB").
const PADDING_ID: u16 = 0x4246;
/// DOS date 1980-01-01: time stamps would make the file depend on when it was written.
const DOS_DATE: u16 = (1 << 5) | 1;

/// The archive of `records` (name, data), in order.
pub fn stored(records: &[(String, &[u8])]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in records {
        let offset = out.len();
        let crc = crc32(data);
        // The extra field is a 4-byte header plus padding up to the next aligned offset.
        let unpadded = offset + LOCAL_HEADER + name.len() + 4;
        let extra = 4 + (ALIGNMENT - unpadded % ALIGNMENT) % ALIGNMENT;
        put32(&mut out, 0x0403_4b50);
        common_fields(&mut out, crc, data.len(), name, extra)?;
        out.extend_from_slice(name.as_bytes());
        put16(&mut out, PADDING_ID);
        put16(&mut out, (extra - 4) as u16);
        out.resize(out.len() + extra - 4, 0);
        debug_assert_eq!(out.len() % ALIGNMENT, 0);
        out.extend_from_slice(data);

        put32(&mut central, 0x0201_4b50);
        put16(&mut central, 20); // made by: zip 2.0
        common_fields(&mut central, crc, data.len(), name, 0)?;
        put16(&mut central, 0); // comment
        put16(&mut central, 0); // disk
        put16(&mut central, 0); // internal attributes
        put32(&mut central, 0); // external attributes
        put32(&mut central, small(offset)?);
        central.extend_from_slice(name.as_bytes());
    }
    let (cd_offset, cd_len) = (out.len(), central.len());
    out.extend_from_slice(&central);
    ensure!(
        records.len() < 0xffff,
        "{} records need zip64",
        records.len()
    );
    put32(&mut out, 0x0605_4b50);
    put32(&mut out, 0); // this disk, disk with the central directory
    put16(&mut out, records.len() as u16);
    put16(&mut out, records.len() as u16);
    put32(&mut out, small(cd_len)?);
    put32(&mut out, small(cd_offset)?);
    put16(&mut out, 0); // comment
    Ok(out)
}

/// Version needed .. extra length: the fields local and central headers share.
fn common_fields(out: &mut Vec<u8>, crc: u32, len: usize, name: &str, extra: usize) -> Result<()> {
    put16(out, 20); // needed: zip 2.0
    put16(out, 0x0800); // names are UTF-8
    put16(out, 0); // stored
    put16(out, 0); // time
    put16(out, DOS_DATE);
    put32(out, crc);
    put32(out, small(len)?); // compressed
    put32(out, small(len)?); // uncompressed
    put16(out, name.len() as u16);
    put16(out, extra as u16);
    Ok(())
}

/// Sizes and offsets without zip64 (4 GiB; the study's network is 120 MB).
fn small(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| anyhow::anyhow!("{v} bytes: .pth files over 4 GiB need zip64"))
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// CRC-32 (IEEE 802.3, reflected), the zip checksum.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn records_start_aligned() {
        let data = [1u8, 2, 3];
        let zip = stored(&[
            ("a/x".into(), &data[..]),
            ("a/longer/name".into(), &data[..]),
        ])
        .unwrap();
        let starts: Vec<usize> = zip
            .windows(3)
            .enumerate()
            .filter(|(_, w)| *w == data)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(starts, [64, 128]);
        assert_eq!(&zip[zip.len() - 22..zip.len() - 18], &[0x50, 0x4b, 5, 6]);
    }
}
