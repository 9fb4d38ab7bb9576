//! Tests of the sharding module: the rendezvous `assign` (table tests) and
//! the bounded-load `bounded::assign_bounded` (property tests over
//! pseudo-random fleets).

mod rendezvous {
    use xxhash_rust::xxh3::xxh3_64;

    use crate::sharding::{assign, owner, Member};

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{:016x}", xxh3_64(&i.to_le_bytes())))
            .collect()
    }

    fn members(names: &[&str]) -> Vec<Member> {
        names.iter().map(|n| Member::new(*n)).collect()
    }

    #[test]
    fn no_members_no_owner() {
        assert!(owner("t", &[]).is_none());
        assert!(assign(["t"], &[]).is_empty());
    }

    #[test]
    fn leaving_member_moves_only_its_targets() {
        let targets = ids(5000);
        let before = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "c", "d"]),
        );
        let after = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "d"]),
        );
        for t in &targets {
            if before[t] != "c" {
                assert_eq!(before[t], after[t], "target {t} moved without need");
            } else {
                assert_ne!(after[t], "c");
            }
        }
    }

    #[test]
    fn joining_member_takes_about_its_share_and_only_that() {
        let targets = ids(10_000);
        let before = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "c"]),
        );
        let after = assign(
            targets.iter().map(String::as_str),
            &members(&["a", "b", "c", "d"]),
        );
        let moved: Vec<_> = targets.iter().filter(|t| before[*t] != after[*t]).collect();
        assert!(moved.iter().all(|t| after[*t] == "d"));
        let share = moved.len() as f64 / targets.len() as f64;
        assert!((0.22..0.28).contains(&share), "moved share {share}");
    }

    #[test]
    fn load_is_roughly_even() {
        let targets = ids(20_000);
        let m = members(&["s1", "s2", "s3", "s4", "s5"]);
        let a = assign(targets.iter().map(String::as_str), &m);
        for member in &m {
            let n = a.values().filter(|v| **v == member.id).count();
            assert!((3600..4400).contains(&n), "{} has {n}", member.id);
        }
    }
}

mod bounded;
