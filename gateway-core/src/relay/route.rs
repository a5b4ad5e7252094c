//! Candidate order: highest priority tier first; inside a tier, weighted random without
//! replacement, or round robin when every weight is 0.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use crate::snapshot::Tier;

/// Channel ids in the order they should be tried.
pub fn order(tiers: &[Tier], rr: &AtomicUsize) -> Vec<i64> {
    let mut out = Vec::with_capacity(tiers.iter().map(|t| t.members.len()).sum());
    for tier in tiers {
        let members = &tier.members;
        if members.len() == 1 {
            out.push(members[0].0);
            continue;
        }
        type Members = Vec<(i64, i64)>;
        let (weighted, zero): (Members, Members) = members.iter().partition(|(_, w)| *w > 0);
        let mut pool = weighted;
        let mut rng = rand::rng();
        while !pool.is_empty() {
            let total: i64 = pool.iter().map(|(_, w)| *w).sum();
            let mut pick = rng.random_range(0..total);
            let idx = pool
                .iter()
                .position(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= *w;
                        false
                    }
                })
                .unwrap_or(0);
            out.push(pool.swap_remove(idx).0);
        }
        if !zero.is_empty() {
            let start = rr.fetch_add(1, Ordering::Relaxed) % zero.len();
            out.extend(
                zero[start..]
                    .iter()
                    .chain(&zero[..start])
                    .map(|(id, _)| *id),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_tiers_come_first() {
        let tiers = vec![
            Tier {
                priority: 10,
                members: vec![(1, 1)],
            },
            Tier {
                priority: 0,
                members: vec![(2, 1), (3, 1)],
            },
        ];
        let o = order(&tiers, &AtomicUsize::new(0));
        assert_eq!(o[0], 1);
        assert_eq!(o.len(), 3);
    }

    #[test]
    fn weights_shape_the_first_pick() {
        let tiers = vec![Tier {
            priority: 0,
            members: vec![(1, 80), (2, 20)],
        }];
        let rr = AtomicUsize::new(0);
        let firsts = (0..10_000).filter(|_| order(&tiers, &rr)[0] == 1).count();
        assert!(
            (7_600..8_400).contains(&firsts),
            "80/20 split, got {firsts}"
        );
    }

    #[test]
    fn zero_weights_rotate() {
        let tiers = vec![Tier {
            priority: 0,
            members: vec![(1, 0), (2, 0), (3, 0)],
        }];
        let rr = AtomicUsize::new(0);
        let firsts: Vec<i64> = (0..6).map(|_| order(&tiers, &rr)[0]).collect();
        assert_eq!(firsts, vec![1, 2, 3, 1, 2, 3]);
    }
}
