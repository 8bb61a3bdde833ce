//! Featurizer measurements for `bench/featurize_bench.py` (featurizing files is
//! `nonneg featurize`):
//!
//! ```text
//! cargo run --release --example featurize -- dump-text --class spam=DIR ... --out docs.jsonl
//! cargo run --release --example featurize -- bench-text --class spam=DIR ... [--docs docs.jsonl]
//! ```

use clap::{Parser, Subcommand};
use nonneg::features::corpus::{featurize_corpus, SpecSource};
use nonneg::features::source;
use nonneg::features::text::{self, Analysis, TextOptions};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes the decoded body text of every sample, one JSON string per line, in corpus
    /// order (the same text nonneg tokenizes, for comparison with other tokenizers).
    DumpText {
        #[arg(long = "class", value_name = "NAME=PATH", required = true)]
        classes: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Times nonneg on the corpus: (a) end to end from raw emails (read, MIME-decode,
    /// tokenize, build vocabulary with min_df 1, binary rows); (b) tokenize + vocabulary
    /// + rows from already decoded text (`--docs`, from dump-text). Prints JSON.
    BenchText {
        #[arg(long = "class", value_name = "NAME=PATH", required = true)]
        classes: Vec<String>,
        #[arg(long)]
        docs: Option<PathBuf>,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
}

fn classes(v: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    v.iter()
        .map(|s| {
            let (n, p) = s
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("expected NAME=PATH, got {s}"))?;
            Ok((n.to_owned(), PathBuf::from(p)))
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::DumpText { classes: c, out } => {
            let mut docs = Vec::new();
            for (_, p) in classes(&c)? {
                let l = source::list(&p)?;
                let texts = l
                    .samples
                    .par_iter()
                    .map(|s| Ok(text::decoded_text(&s.bytes()?)))
                    .collect::<nonneg::Result<Vec<String>>>()?;
                docs.extend(texts);
            }
            let mut w = std::io::BufWriter::new(std::fs::File::create(&out)?);
            for d in &docs {
                serde_json::to_writer(&mut w, d)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            eprintln!("wrote {} documents to {}", docs.len(), out.display());
            Ok(())
        }
        Cmd::BenchText {
            classes: c,
            docs,
            repeat,
        } => {
            let c = classes(&c)?;
            let pos = c[0].0.clone();
            let mut best_e2e = f64::INFINITY;
            let mut shape = (0, 0, 0);
            for _ in 0..repeat {
                let t = Instant::now();
                let corpus = featurize_corpus(
                    &c,
                    &pos,
                    SpecSource::BuildVocabulary {
                        options: TextOptions::default(),
                        min_df: 1,
                        max_features: None,
                    },
                )?;
                best_e2e = best_e2e.min(t.elapsed().as_secs_f64());
                shape = (corpus.x.rows, corpus.x.cols, corpus.x.indices.len());
            }
            let mut best_text = None;
            let mut text_shape = None;
            if let Some(d) = docs {
                let texts: Vec<String> = std::fs::read_to_string(&d)?
                    .lines()
                    .map(serde_json::from_str)
                    .collect::<Result<_, _>>()?;
                let mut best = f64::INFINITY;
                for _ in 0..repeat {
                    let t = Instant::now();
                    let opts = TextOptions::default();
                    let analyses: Vec<Analysis> = texts
                        .par_iter()
                        .map(|s| text::analyze_plain(&opts, s))
                        .collect();
                    let t1 = t.elapsed().as_secs_f64();
                    let (spec, rows) = text::fit_transform(opts, analyses, 1, None)?;
                    let t2 = t.elapsed().as_secs_f64();
                    text_shape = Some((
                        rows.len(),
                        spec.n_features(),
                        rows.iter().map(|r| r.indices.len()).sum::<usize>(),
                    ));
                    drop(rows);
                    best = best.min(t.elapsed().as_secs_f64());
                    if std::env::var_os("BENCH_DEBUG").is_some() {
                        eprintln!(
                            "analyze {t1:.3} vocab+rows {:.3} drop {:.3}",
                            t2 - t1,
                            t.elapsed().as_secs_f64() - t2
                        );
                    }
                }
                best_text = Some(best);
            }
            println!(
                "{}",
                serde_json::json!({
                    "threads": rayon::current_num_threads(),
                    "end_to_end_s": best_e2e,
                    "end_to_end_shape": [shape.0, shape.1, shape.2],
                    "decoded_text_s": best_text,
                    "decoded_text_shape": text_shape.map(|s| [s.0, s.1, s.2]),
                })
            );
            Ok(())
        }
    }
}
