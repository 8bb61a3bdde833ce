//! Deterministic sparse svmlight shards for the streaming figures (README, Scaling ->
//! Streaming): binary rows over 2^20 features with a planted linear rule, so training has
//! something to learn.
//!
//! ```text
//! cargo run --release --example gen_shards -- OUT_DIR SHARDS ROWS_PER_SHARD [NNZ] [SEED]
//! ```
//!
//! Shard `k` is `OUT_DIR/part-KKKKK.svm`; each row has NNZ (default 200) distinct
//! features; the label is 1 when the row's planted score is positive (about 30% of rows).
//! Every shard is drawn from its own generator (seed, shard), so shards are written on
//! all cores and a shard's bytes never depend on the others.

use nonneg::rng::Rng;
use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

const FEATURES: u64 = 1 << 20;

/// The planted weight of feature `j`: a hash of `j`, most features slightly negative,
/// one in 16 strongly positive.
fn weight(j: u64) -> f32 {
    let h = j.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    if h % 16 == 0 {
        1.0
    } else {
        -0.1 + (h % 7) as f32 * 0.01
    }
}

fn write_shard(path: &Path, rows: usize, nnz: usize, seed: u64) -> std::io::Result<()> {
    let mut rng = Rng::new(seed);
    let tmp = path.with_extension("svm.tmp");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let mut idx: Vec<u64> = Vec::with_capacity(nnz);
    let mut line = String::with_capacity(nnz * 10);
    for _ in 0..rows {
        idx.clear();
        while idx.len() < nnz {
            idx.push(rng.below(FEATURES));
            if idx.len() == nnz {
                idx.sort_unstable();
                idx.dedup();
            }
        }
        let score: f32 = idx.iter().map(|&j| weight(j)).sum::<f32>() - 1.0;
        line.clear();
        line.push(if score > 0.0 { '1' } else { '0' });
        for &j in &idx {
            use std::fmt::Write as _;
            let _ = write!(line, " {}:1", j + 1);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, path)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        anyhow::bail!("usage: gen_shards OUT_DIR SHARDS ROWS_PER_SHARD [NNZ] [SEED]");
    }
    let dir = PathBuf::from(&args[0]);
    let shards: usize = args[1].parse()?;
    let rows: usize = args[2].parse()?;
    let nnz: usize = args.get(3).map_or(Ok(200), |s| s.parse())?;
    let seed: u64 = args.get(4).map_or(Ok(0), |s| s.parse())?;
    std::fs::create_dir_all(&dir)?;
    (0..shards).into_par_iter().try_for_each(|k| {
        let path = dir.join(format!("part-{k:05}.svm"));
        write_shard(&path, rows, nnz, seed.wrapping_mul(1_000_003) ^ k as u64)
    })?;
    Ok(())
}
