//! Segment names.

use crate::{Error, Result};

/// Longest accepted segment name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// Check a segment name: 1 to 200 bytes of `[A-Za-z0-9._-]`, not starting with a dot.
///
/// ```
/// use shmring::shm::validate_name;
/// assert!(validate_name("feed.ticks-1").is_ok());
/// assert!(validate_name("../x").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("longer than 200 bytes");
    }
    if name.starts_with('.') {
        return bad("starts with a dot");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only A-Z a-z 0-9 . _ - are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for bad in ["", "a/b", "../x", ".x", "a b", "é"] {
            assert!(matches!(validate_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(201)).is_err());
        assert!(validate_name(&"a".repeat(200)).is_ok());
        assert!(validate_name("A.z_0-9").is_ok());
    }
}
