//! The statistics `compare` decides with: medians, a one-sided Mann–Whitney U test (exact for
//! small samples), and a bootstrap interval of a ratio of means with a fixed seed (so the same
//! inputs always give the same verdict).

/// Median (mean of the middle two for an even count); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// One-sided Mann–Whitney U test of "x tends to be smaller than y": the p-value of
/// U = #{x_i < y_j} + ½ #{x_i = y_j} being this large when x and y come from one distribution.
/// Exact (ties counted conservatively) up to 400 pairs, the normal approximation beyond.
pub fn mann_whitney_less(x: &[f64], y: &[f64]) -> f64 {
    let (n, m) = (x.len(), y.len());
    if n == 0 || m == 0 {
        return 1.0;
    }
    let mut u = 0.0f64;
    for a in x {
        for b in y {
            if a < b {
                u += 1.0;
            } else if a == b {
                u += 0.5;
            }
        }
    }
    if n * m <= 400 {
        let f = u_distribution(n, m);
        let total: f64 = f.iter().sum();
        let from = u.floor() as usize;
        f[from.min(f.len())..].iter().sum::<f64>() / total
    } else {
        let (nf, mf) = (n as f64, m as f64);
        let mean = nf * mf / 2.0;
        let sd = (nf * mf * (nf + mf + 1.0) / 12.0).sqrt();
        let z = (u - 0.5 - mean) / sd;
        0.5 * erfc(z / std::f64::consts::SQRT_2)
    }
}

/// How many of the C(n+m, n) orderings of n x's and m y's give each U = #{x < y}.
fn u_distribution(n: usize, m: usize) -> Vec<f64> {
    // f[i][j]: distribution for i x's and j y's. Put the largest value last: an x there is below
    // no y (U += 0); a y there is above all i x's (U += i).
    let mut prev_row: Vec<Vec<f64>> = (0..=m).map(|_| vec![1.0]).collect(); // i = 0
    for i in 1..=n {
        let mut row: Vec<Vec<f64>> = Vec::with_capacity(m + 1);
        row.push(vec![1.0]); // j = 0
        for j in 1..=m {
            let mut d = vec![0.0; i * j + 1];
            for (u, c) in prev_row[j].iter().enumerate() {
                d[u] += c;
            }
            for (u, c) in row[j - 1].iter().enumerate() {
                d[u + i] += c;
            }
            row.push(d);
        }
        prev_row = row;
    }
    prev_row.swap_remove(m)
}

/// Complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398
                                    + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// splitmix64: a small, fixed, dependency-free generator for the bootstrap.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bootstrap distribution of mean(new) / mean(base), resampling each side with replacement;
/// returns its `q_lo` and `q_hi` quantiles. Deterministic: the seed is fixed.
pub fn bootstrap_ratio(base: &[f64], new: &[f64], q_lo: f64, q_hi: f64) -> (f64, f64) {
    const ROUNDS: usize = 4000;
    let mut rng = SplitMix(0x6D71_2D62_656E_6368); // "mq-bench"
    let mean = |v: &[f64], rng: &mut SplitMix| {
        (0..v.len()).map(|_| v[rng.below(v.len())]).sum::<f64>() / v.len() as f64
    };
    let mut ratios: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let b = mean(base, &mut rng);
            let n = mean(new, &mut rng);
            if b > 0.0 {
                n / b
            } else {
                f64::INFINITY
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((q * (ROUNDS - 1) as f64).round() as usize).min(ROUNDS - 1)];
    (at(q_lo), at(q_hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn mann_whitney_exact_matches_tables() {
        // 3 vs 3, every x below every y: 1 ordering of C(6,3) = 20.
        let p = mann_whitney_less(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert!((p - 0.05).abs() < 1e-12, "{p}");
        // 5 vs 5 fully separated: 1/252.
        let p = mann_whitney_less(&[1., 2., 3., 4., 5.], &[6., 7., 8., 9., 10.]);
        assert!((p - 1.0 / 252.0).abs() < 1e-12, "{p}");
        // The other way round: no evidence at all.
        assert_eq!(mann_whitney_less(&[6., 7., 8.], &[1., 2., 3.]), 1.0);
        // Interleaved: about even.
        let p = mann_whitney_less(&[1., 3., 5.], &[2., 4., 6.]);
        assert!(p > 0.2 && p < 0.5, "{p}");
    }

    #[test]
    fn mann_whitney_normal_approximation_is_close_to_exact() {
        let x: Vec<f64> = (0..25).map(|i| i as f64).collect();
        let y: Vec<f64> = (0..25).map(|i| i as f64 + 6.5).collect();
        let approx = mann_whitney_less(&x, &y);
        let f = u_distribution(25, 25);
        let total: f64 = f.iter().sum();
        assert!((total - 126_410_606_437_752.0).abs() / total < 1e-9); // C(50, 25)
        assert!(approx > 0.001 && approx < 0.05, "{approx}");
    }

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_ratio() {
        let base = [100.0, 102.0, 98.0, 101.0, 99.0];
        let new: Vec<f64> = base.iter().map(|v| v * 0.8).collect();
        let a = bootstrap_ratio(&base, &new, 0.05, 0.95);
        assert_eq!(a, bootstrap_ratio(&base, &new, 0.05, 0.95));
        assert!(a.0 < 0.8 + 0.02 && a.1 > 0.8 - 0.02 && a.1 < 0.85, "{a:?}");
    }
}
