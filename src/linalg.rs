//! Dense matrix products on row-major f32 slices, via faer.
//!
//! Determinism: faer parallelises a product over tiles of the output and keeps each dot
//! product's reduction on one thread in a fixed order, so the bits do not depend on the
//! thread count (checked by `parallel_product_is_bitwise_sequential` below).

use faer::{Accum, MatMut, MatRef, Par};

/// Products smaller than this many multiply-adds run on one thread: below it, the fork
/// costs more than it saves (measured on 2 cores: 256x512x512 is faster sequential).
const PARALLEL_MIN_FLOPS: usize = 1 << 27;

/// Which operand is used transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    N,
    T,
}

/// `c[m x n] (+)= a' @ b'` where `a'` is `a[m x k]` (or `a[k x m]` transposed) and `b'` is
/// `b[k x n]` (or `b[n x k]` transposed). All row-major.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    debug_assert_eq!(c.len(), m * n);
    debug_assert_eq!(a.len(), m * k);
    debug_assert_eq!(b.len(), k * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    let a = match ta {
        Trans::N => MatRef::from_row_major_slice(a, m, k),
        Trans::T => MatRef::from_row_major_slice(a, k, m).transpose(),
    };
    let b = match tb {
        Trans::N => MatRef::from_row_major_slice(b, k, n),
        Trans::T => MatRef::from_row_major_slice(b, n, k).transpose(),
    };
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && m * n * k >= PARALLEL_MIN_FLOPS {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(c, accum, a, b, 1.0f32, par);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += a[i * k + p] as f64 * b[p * n + j] as f64;
                }
            }
        }
        c.into_iter().map(|v| v as f32).collect()
    }

    fn transpose(a: &[f32], r: usize, c: usize) -> Vec<f32> {
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = a[i * c + j];
            }
        }
        t
    }

    #[test]
    fn all_transpositions_match_naive_product() {
        let mut rng = Rng::new(1);
        let (m, k, n) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal_f32()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal_f32()).collect();
        let want = naive(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        for (aa, ta) in [(&a, Trans::N), (&at, Trans::T)] {
            for (bb, tb) in [(&b, Trans::N), (&bt, Trans::T)] {
                let mut c = vec![1.0; m * n];
                matmul(&mut c, aa, ta, bb, tb, m, k, n, false);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "{ta:?}{tb:?}: {x} vs {y}");
                }
                matmul(&mut c, aa, ta, bb, tb, m, k, n, true);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 2e-4);
                }
            }
        }
    }

    #[test]
    fn parallel_product_is_bitwise_sequential() {
        let mut rng = Rng::new(2);
        for &(m, k, n) in &[(256usize, 2381usize, 512usize), (700, 256, 512)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.normal_f32()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| rng.normal_f32()).collect();
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut c = vec![0.0; m * n];
                pool.install(|| matmul(&mut c, &a, Trans::N, &b, Trans::N, m, k, n, false));
                c
            };
            let one = run(1);
            let two = run(2);
            let four = run(4);
            assert!(one
                .iter()
                .zip(&two)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
            assert!(one
                .iter()
                .zip(&four)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
