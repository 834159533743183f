//! Xauthority files: keep only the cookies for one display, so an app
//! granted X11 gets the key to its display and nothing else. The format
//! (Xau): records of family (u16 BE) and four u16-length-prefixed fields:
//! address, display number, auth name, auth data.

const FAMILY_WILD: u16 = 0xffff;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub family: u16,
    pub address: Vec<u8>,
    pub number: Vec<u8>,
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

/// Parse a whole Xauthority file; `None` if it is malformed.
pub fn parse(mut b: &[u8]) -> Option<Vec<Entry>> {
    fn u16_at(b: &mut &[u8]) -> Option<u16> {
        let (h, t) = b.split_first_chunk::<2>()?;
        *b = t;
        Some(u16::from_be_bytes(*h))
    }
    fn field(b: &mut &[u8]) -> Option<Vec<u8>> {
        let n = u16_at(b)? as usize;
        let (f, t) = (b.get(..n)?, b.get(n..)?);
        *b = t;
        Some(f.to_vec())
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let family = u16_at(&mut b)?;
        out.push(Entry {
            family,
            address: field(&mut b)?,
            number: field(&mut b)?,
            name: field(&mut b)?,
            data: field(&mut b)?,
        });
    }
    Some(out)
}

pub fn serialize(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&e.family.to_be_bytes());
        for f in [&e.address, &e.number, &e.name, &e.data] {
            out.extend_from_slice(&(f.len().min(u16::MAX as usize) as u16).to_be_bytes());
            out.extend_from_slice(&f[..f.len().min(u16::MAX as usize)]);
        }
    }
    out
}

/// The cookies for display `number`, made host-independent (family
/// FamilyWild), as Flatpak does: the sandbox has its own hostname.
pub fn filter_for_display(entries: &[Entry], number: u32) -> Vec<Entry> {
    let want = number.to_string().into_bytes();
    entries
        .iter()
        .filter(|e| e.number == want)
        .map(|e| Entry {
            family: FAMILY_WILD,
            address: Vec::new(),
            ..e.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: &str, cookie: u8) -> Entry {
        Entry {
            family: 256,
            address: b"host".to_vec(),
            number: n.as_bytes().to_vec(),
            name: b"MIT-MAGIC-COOKIE-1".to_vec(),
            data: vec![cookie; 16],
        }
    }

    #[test]
    fn keeps_only_the_granted_display() {
        let file = serialize(&[entry("0", 1), entry("1", 2), entry("10", 3)]);
        let parsed = parse(&file).unwrap_or_default();
        assert_eq!(parsed.len(), 3);
        let kept = filter_for_display(&parsed, 1);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].data, vec![2; 16]);
        assert_eq!(kept[0].family, FAMILY_WILD);
        assert!(
            parse(&file[..file.len() - 3]).is_none(),
            "truncated input is refused"
        );
        assert_eq!(parse(&[]), Some(vec![]));
    }
}
