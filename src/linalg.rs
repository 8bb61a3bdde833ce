//! Dense matrix products on row-major f32 slices, via faer.
//!
//! Parallelism: a product is cut into output tiles whose sizes depend only on its shape,
//! never on the thread count; each tile is one sequential faer product, and rayon hands
//! the tiles to whichever threads are free. Every output element is therefore computed by
//! the same sequential code at any thread count (bitwise the same results, checked by
//! `products_do_not_depend_on_the_thread_count` below). faer's own parallel GEMM is not
//! used: it splits the work by the thread count and meets at spinning barriers once per
//! 512-deep slice of the product, so one descheduled thread (more threads than free
//! cores, a busy machine) stalls all the others.

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

/// Products below this many multiply-adds (~50 us on one core) stay whole: a fork
/// would cost more than it saves.
const MIN_SPLIT_WORK: usize = 1 << 21;

/// Output columns per tile. Cutting by columns costs nothing measurable (each tile packs
/// only its own columns of `b`); 64 keeps faer's microkernel busy (32 measured 15-25%
/// slower) and cuts a 512-unit layer into 8 tiles.
const TILE_COLS: usize = 64;

/// Output rows per tile. Every band of rows packs its columns of `b` again: bands of 128
/// rows cost ~5% on the first layer's forward product (256 x 2381 x 512), bands of 512
/// nothing measurable on its kernel gradient (2381 x 256 x 512).
const TILE_ROWS: usize = 512;

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
    let (rows, cols) = tile_shape(m, k, n);
    matmul_tiled(c, a, ta, b, tb, (m, k, n), accumulate, rows, cols);
}

/// Rows and columns of the output tiles of an `m x k x n` product.
fn tile_shape(m: usize, k: usize, n: usize) -> (usize, usize) {
    let (m, n) = (m.max(1), n.max(1));
    if m * k * n < MIN_SPLIT_WORK {
        return (m, n);
    }
    (TILE_ROWS.min(m), TILE_COLS.min(n))
}

/// [`matmul`] with the output cut into `rows x cols` tiles.
#[allow(clippy::too_many_arguments)]
fn matmul_tiled(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
    rows: usize,
    cols: usize,
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
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let product = |c: MatMut<f32>, i: usize, j: usize| {
        let (a, b) = (a.subrows(i, c.nrows()), b.subcols(j, c.ncols()));
        faer::linalg::matmul::matmul(c, accum, a, b, 1.0f32, Par::Seq);
    };
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    if rows >= m && cols >= n {
        return product(c, 0, 0);
    }
    let mut tiles = Vec::with_capacity(m.div_ceil(rows) * n.div_ceil(cols));
    let mut below = c;
    for i in (0..m).step_by(rows) {
        let (mut band, rest) = below.split_at_row_mut(rows.min(m - i));
        below = rest;
        for j in (0..n).step_by(cols) {
            let (tile, right) = band.split_at_col_mut(cols.min(n - j));
            band = right;
            tiles.push((tile, i, j));
        }
    }
    tiles
        .into_par_iter()
        .for_each(|(tile, i, j)| product(tile, i, j));
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
    fn all_transpositions_match_naive_product_whole_and_tiled() {
        let mut rng = Rng::new(1);
        let (m, k, n) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|_| rng.normal_f32()).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.normal_f32()).collect();
        let want = naive(&a, &b, m, k, n);
        let at = transpose(&a, m, k);
        let bt = transpose(&b, k, n);
        // Whole, and in ragged 3 x 2 tiles (every edge case of the cut).
        for (rows, cols) in [(m, n), (3, 2)] {
            for (aa, ta) in [(&a, Trans::N), (&at, Trans::T)] {
                for (bb, tb) in [(&b, Trans::N), (&bt, Trans::T)] {
                    let mut c = vec![1.0; m * n];
                    let shape = (m, k, n);
                    matmul_tiled(&mut c, aa, ta, bb, tb, shape, false, rows, cols);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((x - y).abs() < 1e-4, "{ta:?}{tb:?}: {x} vs {y}");
                    }
                    matmul_tiled(&mut c, aa, ta, bb, tb, shape, true, rows, cols);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((x - 2.0 * y).abs() < 2e-4);
                    }
                }
            }
        }
    }

    /// The products of training the 2381-512-512-1 benchmark model on batches of 256, and
    /// a batch that does not divide into tiles.
    const TRAINING_PRODUCTS: [(Trans, Trans, usize, usize, usize); 6] = [
        (Trans::N, Trans::N, 256, 2381, 512), // first layer forward
        (Trans::N, Trans::N, 256, 512, 512),  // second layer forward
        (Trans::T, Trans::N, 2381, 256, 512), // first layer kernel gradient
        (Trans::T, Trans::N, 512, 256, 512),  // second layer kernel gradient
        (Trans::N, Trans::T, 256, 512, 512),  // second layer input gradient
        (Trans::N, Trans::N, 700, 300, 257),
    ];

    fn random(len: usize, rng: &mut Rng) -> Vec<f32> {
        (0..len).map(|_| rng.normal_f32()).collect()
    }

    #[test]
    fn products_do_not_depend_on_the_thread_count() {
        let mut rng = Rng::new(2);
        for (ta, tb, m, k, n) in TRAINING_PRODUCTS {
            let (a, b, c0) = (
                random(m * k, &mut rng),
                random(k * n, &mut rng),
                random(m * n, &mut rng),
            );
            let run = |threads: usize, accumulate: bool| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut c = c0.clone();
                pool.install(|| matmul(&mut c, &a, ta, &b, tb, m, k, n, accumulate));
                c.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            };
            for accumulate in [false, true] {
                let one = run(1, accumulate);
                for threads in [2, 3, 16] {
                    assert!(
                        one == run(threads, accumulate),
                        "{m}x{k}x{n} on {threads} threads"
                    );
                }
            }
        }
    }

    #[test]
    fn cutting_a_product_into_tiles_keeps_its_bits() {
        let mut rng = Rng::new(3);
        for (ta, tb, m, k, n) in TRAINING_PRODUCTS {
            let (a, b) = (random(m * k, &mut rng), random(k * n, &mut rng));
            let (rows, cols) = tile_shape(m, k, n);
            assert!(rows < m || cols < n, "{m}x{k}x{n} is cut into tiles");
            let mut whole = vec![0.0; m * n];
            matmul_tiled(&mut whole, &a, ta, &b, tb, (m, k, n), false, m, n);
            let mut tiled = vec![0.0; m * n];
            matmul(&mut tiled, &a, ta, &b, tb, m, k, n, false);
            assert!(whole
                .iter()
                .zip(&tiled)
                .all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
