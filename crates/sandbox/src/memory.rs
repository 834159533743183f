//! Which of a process's mappings hold only setup's pages, from
//! `/proc/self/maps` (pure: text in, address ranges out). berth's
//! supervisor and pid 1 live as long as the app but run a few hundred
//! bytes of a large binary after setup; dropping the rest of the code they
//! touched keeps what each instance costs small (`bench/launch.sh`, PSS).

/// Address ranges of private, read-only, file-backed mappings that are
/// either executable (code) or start at file offset 0 (an ELF object's
/// first segment: headers, symbols, constants). The dynamic loader never
/// writes either (relocations go to the writable and RELRO segments,
/// which are later in the file, and neither berth nor Debian's amd64
/// libraries have text relocations), so their pages are exactly the
/// file's: unmapping them loses nothing, the page cache keeps them and
/// the next access maps them again. `/proc/self/smaps` could prove "no
/// copied page" per mapping, but reading it costs more than the launch
/// budget allows.
pub fn clean_file_ranges(maps: &str) -> Vec<(usize, usize)> {
    maps.lines().filter_map(clean_range).collect()
}

/// `start-end perms offset dev inode [path]`.
fn clean_range(line: &str) -> Option<(usize, usize)> {
    let mut f = line.split_whitespace();
    let (a, b) = f.next()?.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    let perms = f.next()?.as_bytes();
    let offset = u64::from_str_radix(f.next()?, 16).ok()?;
    let _dev = f.next()?;
    let inode: u64 = f.next()?.parse().ok()?;
    let path = f.next().unwrap_or("");
    let ok = perms.len() == 4
        && end > start
        && perms[0] == b'r'
        && perms[1] == b'-'
        && perms[3] == b'p'
        && (perms[2] == b'x' || offset == 0)
        && inode != 0
        && path.starts_with('/');
    ok.then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d4c0a00000-55d4c0e00000 r--p 00000000 08:01 1234                       /usr/bin/berth
55d4c0e00000-55d4c1800000 r-xp 00400000 08:01 1234                       /usr/bin/berth
55d4c1800000-55d4c1900000 r--p 00e2b000 08:01 1234                       /usr/bin/berth
55d4c1900000-55d4c1a00000 rw-p 00eaf000 08:01 1234                       /usr/bin/berth
55d4c2000000-55d4c2100000 rw-p 00000000 00:00 0                          [heap]
7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]
7f0000000000-7f0000001000 r--s 00000000 08:01 99                         /dev/shm/x
7f0000002000-7f0000003000 rw-p 00000000 08:01 98                         /lib/data
";

    #[test]
    fn only_code_and_first_segments_of_files() {
        assert_eq!(
            clean_file_ranges(MAPS),
            vec![
                (0x55d4c0a00000, 0x55d4c0e00000),
                (0x55d4c0e00000, 0x55d4c1800000)
            ]
        );
    }

    #[test]
    fn garbage_yields_nothing() {
        assert!(clean_file_ranges("").is_empty());
        assert!(clean_file_ranges("zz-yy r--p 0 0:0 1 /a").is_empty());
        assert!(clean_file_ranges("2000-1000 r--p 0 0:0 1 /a").is_empty());
        assert!(clean_file_ranges("1000-2000 r--p 0 0:0").is_empty());
    }
}
