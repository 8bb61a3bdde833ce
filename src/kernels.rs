//! Hot elementwise loops, compiled for several instruction sets and picked at run time
//! (AVX-512, AVX2, baseline), so a portable binary still uses wide vectors. Results are
//! bit-identical across versions: the loops are elementwise and Rust never fuses a
//! multiply and an add into an FMA on its own.

use crate::optim::{OptimizerConfig, StepScalars};
use multiversion::multiversion;

/// `dst += src`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn add_assign(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `dst += a * src`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn axpy(dst: &mut [f32], a: f32, src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}

/// `dst += src`, summed in f64 (see `Dense::affine_sparse_rows`).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn add_assign_wide(dst: &mut [f64], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += f64::from(s);
    }
}

/// `dst += a * src`, summed in f64.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn axpy_wide(dst: &mut [f64], a: f64, src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * f64::from(s);
    }
}

/// The correction of a piecewise-linear unit (slope 1 above 0, `alpha` at or below):
/// `out[r] = (slope(t) - s0) * t` with `t = z + d[r] * w[r]`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn kink_correction(z: f32, s0: f32, alpha: f32, d: &[f32], w: &[f32], out: &mut [f32]) {
    for ((o, &d), &w) in out.iter_mut().zip(d).zip(w) {
        let t = z + d * w;
        let s = if t > 0.0 { 1.0 } else { alpha };
        *o = (s - s0) * t;
    }
}

/// `v = max(v, 0)` (ReLU, as `Activation::Relu`) or `v > 0 ? v : alpha v` (leaky).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn leaky_relu(v: &mut [f32], alpha: f32) {
    if alpha == 0.0 {
        for x in v {
            *x = x.max(0.0);
        }
    } else {
        for x in v {
            *x = if *x > 0.0 { *x } else { alpha * *x };
        }
    }
}

/// `dst = max(src, 0)` or `src > 0 ? src : alpha src`: [`leaky_relu`] into another buffer
/// (one pass instead of a copy and a pass).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn leaky_relu_into(dst: &mut [f32], src: &[f32], alpha: f32) {
    if alpha == 0.0 {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = x.max(0.0);
        }
    } else {
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = if x > 0.0 { x } else { alpha * x };
        }
    }
}

/// `dst = a + d * src`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn add_scaled(dst: &mut [f32], a: &[f32], d: f32, src: &[f32]) {
    for ((o, &x), &s) in dst.iter_mut().zip(a).zip(src) {
        *o = x + d * s;
    }
}

/// One optimizer step on a slice of parameters (see `OptimizerConfig::update`).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn optimizer_update(
    cfg: &OptimizerConfig,
    s: &StepScalars,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    cfg.update(s, p, g, m, v);
}

/// `w = max(w, 0)` elementwise, as Keras' NonNeg (`w * (w >= 0)`), NaN to 0.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+avx", "x86_64+avx2+avx"))]
pub fn non_neg(w: &mut [f32]) {
    for x in w {
        *x = if *x >= 0.0 { *x } else { 0.0 };
    }
}

/// Features ahead whose rows are prefetched in sparse gathers and updates.
pub const PREFETCH_AHEAD: usize = 4;

/// Asks the CPU to start loading `len` floats at `ptr` into cache (a hint: no effect on
/// results, and no access is made, so any address is allowed).
#[inline]
pub fn prefetch(ptr: *const f32, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let mut off = 0;
        while off < len {
            // Safety: prefetch never faults and has no architectural effect.
            unsafe { _mm_prefetch(ptr.wrapping_add(off) as *const i8, _MM_HINT_T0) };
            off += 16; // one 64-byte cache line
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ptr, len);
}

/// Bytes from which a buffer is worth huge pages and an eager page-in.
const BIG_BUFFER: usize = 32 << 20;

/// A zeroed buffer whose pages are touched now (in parallel), not on first use: a sparse
/// layer's optimizer state over 2^20 features would otherwise page-fault inside training
/// steps. Big buffers ask Linux for transparent huge pages (fewer TLB misses on the random
/// rows a sparse batch touches).
pub fn zeroed_buffer(len: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let bytes = len * std::mem::size_of::<f32>();
    if bytes < BIG_BUFFER {
        return vec![0.0; len];
    }
    let mut v: Vec<f32> = Vec::with_capacity(len);
    let base = v.as_mut_ptr() as usize;
    #[cfg(target_os = "linux")]
    unsafe {
        // Advisory only: failure leaves ordinary pages.
        let page = 4096usize;
        let start = base.div_ceil(page) * page;
        let end = (base + bytes) / page * page;
        if end > start {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    const CHUNK: usize = 1 << 20;
    (0..len.div_ceil(CHUNK)).into_par_iter().for_each(|c| {
        let n = CHUNK.min(len - c * CHUNK);
        // Safety: disjoint ranges inside the allocation; f32 zero is all-zero bytes.
        unsafe { std::ptr::write_bytes((base as *mut f32).add(c * CHUNK), 0, n) };
    });
    // Safety: every element was initialised above.
    unsafe { v.set_len(len) };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_compute_what_they_say() {
        let mut d = vec![1.0, 2.0, 3.0];
        add_assign(&mut d, &[1.0, 1.0, 1.0]);
        assert_eq!(d, vec![2.0, 3.0, 4.0]);
        axpy(&mut d, 0.5, &[2.0, 2.0, 2.0]);
        assert_eq!(d, vec![3.0, 4.0, 5.0]);
        let mut o = vec![0.0; 3];
        add_scaled(&mut o, &[1.0, 2.0, 3.0], 2.0, &[1.0, -1.0, 0.5]);
        assert_eq!(o, vec![3.0, 0.0, 4.0]);
        let mut c = vec![0.0; 3];
        kink_correction(0.5, 1.0, 0.0, &[1.0, 1.0, 1.0], &[-1.0, 0.2, -0.4], &mut c);
        assert_eq!(c, vec![0.5, 0.0, 0.0]);
        let mut w = vec![-1.0, 0.0, -0.0, 2.0, f32::NAN];
        non_neg(&mut w);
        assert_eq!(w, vec![0.0, 0.0, 0.0, 2.0, 0.0]);
        assert!(w[2].is_sign_positive() || w[2] == 0.0);
        let big = zeroed_buffer(10 << 20);
        assert_eq!(big.len(), 10 << 20);
        assert!(big.iter().all(|&x| x == 0.0));
    }
}
