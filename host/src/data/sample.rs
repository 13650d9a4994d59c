//! Picking examples: seeded shuffles, the class-balanced subset behind
//! `--train-limit`, and the held-out validation split behind `--valid`.

use rand_core::Rng;

use super::Dataset;

/// `n` shuffled indices from a seeded xorshift (Fisher–Yates).
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut r = ember::init::rng(seed);
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (r.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// `limit` training examples picked reproducibly from `seed`, balanced over
/// the classes (round-robin over per-class shuffles).
pub fn balanced_subset(d: &Dataset, classes: usize, limit: usize, seed: u64) -> Dataset {
    if limit >= d.len() {
        return d.clone();
    }
    let order = shuffled(d.len(), seed ^ 0x5eed);
    let mut per: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for i in order {
        per[d.labels[i] as usize].push(i);
    }
    let mut pick = Vec::with_capacity(limit);
    let mut k = 0;
    while pick.len() < limit {
        for c in per.iter() {
            if let Some(&i) = c.get(k) {
                if pick.len() < limit {
                    pick.push(i);
                }
            }
        }
        k += 1;
    }
    pick.sort_unstable();
    d.select(&pick)
}

/// The validation images `--valid` holds out by default: 5,000 of the
/// 60,000 digits, and the same twelfth of a smaller task's training set
/// (1,033 of 3v7's 12,396), so a small task keeps most of its images.
pub fn default_valid(train_len: usize) -> usize {
    train_len.div_ceil(12).min(5000)
}

/// Splits `d` into (train, valid): `n` examples picked from `seed` are held
/// out for validation; both halves keep the original order. `n` is capped
/// so that at least one training example stays.
pub fn split_valid(d: &Dataset, n: usize, seed: u64) -> (Dataset, Dataset) {
    let n = n.min(d.len().saturating_sub(1));
    let order = shuffled(d.len(), seed ^ 0x5a11_d00d);
    let mut valid: Vec<usize> = order[..n].to_vec();
    let mut train: Vec<usize> = order[n..].to_vec();
    valid.sort_unstable();
    train.sort_unstable();
    (d.select(&train), d.select(&valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validation_split_is_seeded_and_disjoint() {
        let d = Dataset {
            images: (0..100 * crate::data::PIXELS)
                .map(|i| (i / crate::data::PIXELS) as u8)
                .collect(),
            labels: (0..100).map(|i| (i % 10) as u8).collect(),
        };
        let (t, v) = split_valid(&d, 30, 7);
        assert_eq!((t.len(), v.len()), (70, 30));
        let id = |x: &Dataset| (0..x.len()).map(|i| x.image(i)[0]).collect::<Vec<_>>();
        let (ti, vi) = (id(&t), id(&v));
        assert!(ti.iter().all(|i| !vi.contains(i)));
        assert_eq!(split_valid(&d, 30, 7).1.labels, v.labels, "seeded");
        assert_ne!(
            id(&split_valid(&d, 30, 8).1),
            vi,
            "another seed, another split"
        );
        assert_eq!(
            split_valid(&d, 1000, 7).0.len(),
            1,
            "one training example stays"
        );
        assert_eq!(default_valid(60_000), 5000);
        assert_eq!(default_valid(12_396), 1033);
    }
}
