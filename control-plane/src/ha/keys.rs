//! The etcd key layout and value encodings, under a configurable prefix
//! (default `/scrapegrid/`):
//!
//! | key                          | value                                    |
//! |------------------------------|------------------------------------------|
//! | `<prefix>leader`             | the leader's endpoint, on its lease (1)  |
//! | `<prefix>generation`         | the cluster generation, decimal          |
//! | `<prefix>owners/<target_id>` | `<generation> <member>` (2)              |
//!
//! (1) The key's create_revision is the leader's term.
//! (2) The owner's assignment generation in decimal, one space, the member
//! id (which may contain spaces).
//!
//! Values are text so `etcdctl get --prefix /scrapegrid/` is readable.

use super::{HaError, PersistedOwner, Result};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/scrapegrid/";

/// The keys of one scrapegrid cluster in etcd.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_string(),
        }
    }

    /// The key the leader holds while it leads.
    pub fn leader(&self) -> Vec<u8> {
        format!("{}leader", self.prefix).into_bytes()
    }

    /// The key of the cluster generation.
    pub fn generation(&self) -> Vec<u8> {
        format!("{}generation", self.prefix).into_bytes()
    }

    /// The prefix of every owner key.
    pub fn owners(&self) -> Vec<u8> {
        format!("{}owners/", self.prefix).into_bytes()
    }

    /// The key of the owner of `target_id`.
    pub fn owner(&self, target_id: &str) -> Vec<u8> {
        format!("{}owners/{target_id}", self.prefix).into_bytes()
    }

    /// Decodes an owner key and value read back from etcd.
    pub fn decode_owner(&self, key: &[u8], value: &[u8]) -> Result<PersistedOwner> {
        let corrupt = |reason: &str| HaError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.to_string(),
        };
        let target_id = key
            .strip_prefix(self.owners().as_slice())
            .ok_or_else(|| corrupt("not under the owners prefix"))?;
        let target_id =
            std::str::from_utf8(target_id).map_err(|_| corrupt("target id is not UTF-8"))?;
        let value = std::str::from_utf8(value).map_err(|_| corrupt("value is not UTF-8"))?;
        let (generation, member) = value
            .split_once(' ')
            .ok_or_else(|| corrupt("value is not \"<generation> <member>\""))?;
        let generation = generation
            .parse()
            .map_err(|_| corrupt("generation is not a number"))?;
        Ok(PersistedOwner {
            target_id: target_id.to_string(),
            member: member.to_string(),
            generation,
        })
    }
}

/// Encodes an owner's value.
pub fn encode_owner(owner: &PersistedOwner) -> Vec<u8> {
    format!("{} {}", owner.generation, owner.member).into_bytes()
}

/// Encodes the cluster generation.
pub fn encode_generation(generation: u64) -> Vec<u8> {
    generation.to_string().into_bytes()
}

/// Decodes the cluster generation read from `key`.
pub fn decode_generation(key: &[u8], value: &[u8]) -> Result<u64> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| HaError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "generation is not a decimal number".into(),
        })
}

/// Returns the end of the etcd range that holds every key starting with
/// `prefix`: the prefix with its last byte below 0xff incremented and the
/// rest cut off; `[0]` (every key) when there is no such byte.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// Returns the first key after `key` in etcd's byte order.
pub fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(target_id: &str, member: &str, generation: u64) -> PersistedOwner {
        PersistedOwner {
            target_id: target_id.into(),
            member: member.into(),
            generation,
        }
    }

    #[test]
    fn layout_under_prefix() {
        let keys = Keys::new("/scrapegrid/");
        assert_eq!(keys.leader(), b"/scrapegrid/leader");
        assert_eq!(keys.generation(), b"/scrapegrid/generation");
        assert_eq!(keys.owner("ab12"), b"/scrapegrid/owners/ab12");
        assert!(keys.owner("x").starts_with(&keys.owners()));
    }

    #[test]
    fn owner_round_trips() {
        let keys = Keys::new("/p/");
        for o in [
            owner("t1", "scraper-0", 7),
            owner("t/with/slashes", "member with spaces", u64::MAX),
            owner("t2", "", 0),
        ] {
            let decoded = keys
                .decode_owner(&keys.owner(&o.target_id), &encode_owner(&o))
                .expect("decodes");
            assert_eq!(decoded, o);
        }
    }

    #[test]
    fn corrupt_owner_values_are_errors() {
        let keys = Keys::new("/p/");
        let key = keys.owner("t1");
        for value in [&b"7"[..], b"x scraper", b"", b"-1 s", &[0xff, b' ', b's']] {
            let err = keys.decode_owner(&key, value).expect_err("corrupt");
            assert!(matches!(err, HaError::Corrupt { .. }), "{value:?}: {err}");
        }
        let err = keys
            .decode_owner(b"/other/owners/t1", b"1 s")
            .expect_err("foreign key");
        assert!(err.to_string().contains("/other/owners/t1"), "{err}");
    }

    #[test]
    fn generation_round_trips() {
        let key = b"/p/generation";
        for g in [0, 1, 1_700_000_000_000_000, u64::MAX] {
            assert_eq!(decode_generation(key, &encode_generation(g)).ok(), Some(g));
        }
        assert!(decode_generation(key, b"12a").is_err());
        assert!(decode_generation(key, b"").is_err());
    }

    #[test]
    fn prefix_end_covers_exactly_the_prefix() {
        assert_eq!(prefix_end(b"/p/owners/"), b"/p/owners0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
        let end = prefix_end(b"/p/owners/");
        for inside in [&b"/p/owners/"[..], b"/p/owners/\xff\xff", b"/p/owners/zz"] {
            assert!(inside >= &b"/p/owners/"[..] && inside < end.as_slice());
        }
        assert!(&b"/p/owners0"[..] >= end.as_slice());
    }

    #[test]
    fn key_after_is_the_next_key() {
        assert_eq!(key_after(b"a"), b"a\0");
        assert!(key_after(b"a").as_slice() > &b"a"[..]);
        assert!(key_after(b"a").as_slice() < &b"a\x01"[..]);
    }
}
