//! Featurizer measurements for `bench/featurize_bench.py` (featurizing files is
//! `nonneg featurize`):
//!
//! ```text
//! cargo run --release --example featurize -- dump-text --class spam=DIR ... --out docs.jsonl
//! cargo run --release --example featurize -- bench-text --class spam=DIR ... [--docs docs.jsonl]
//! ```

use anyhow::{anyhow, bail};
use nonneg::features::corpus::{featurize_corpus, SpecSource};
use nonneg::features::source;
use nonneg::features::text::{self, Analysis, TextOptions};
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// `dump-text` writes the decoded body text of every sample, one JSON string per line, in
/// corpus order (the text nonneg tokenizes, for comparison with other tokenizers).
/// `bench-text` times nonneg on the corpus: (a) end to end from raw emails (read,
/// MIME-decode, tokenize, build vocabulary with min_df 1, binary rows); (b) tokenize +
/// vocabulary + rows from already decoded text (`--docs`, from dump-text). Prints JSON.
/// Parsed by hand so that the example builds without the `cli` feature (clap).
struct Args {
    command: String,
    classes: Vec<(String, PathBuf)>,
    out: Option<PathBuf>,
    docs: Option<PathBuf>,
    repeat: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = it
        .next()
        .ok_or_else(|| anyhow!("usage: featurize dump-text|bench-text --class NAME=PATH ..."))?;
    let mut a = Args {
        command,
        classes: Vec::new(),
        out: None,
        docs: None,
        repeat: 3,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--class" => {
                let (n, p) = value
                    .split_once('=')
                    .ok_or_else(|| anyhow!("expected NAME=PATH, got {value}"))?;
                a.classes.push((n.to_owned(), PathBuf::from(p)));
            }
            "--out" => a.out = Some(value.into()),
            "--docs" => a.docs = Some(value.into()),
            "--repeat" => a.repeat = value.parse()?,
            _ => bail!("unknown option {flag}"),
        }
    }
    if a.classes.is_empty() {
        bail!("at least one --class NAME=PATH is needed");
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    match args.command.as_str() {
        "dump-text" => {
            let out = args
                .out
                .ok_or_else(|| anyhow!("dump-text needs --out FILE"))?;
            let mut docs = Vec::new();
            for (_, p) in &args.classes {
                let l = source::list(p)?;
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
        "bench-text" => {
            let (c, docs, repeat) = (args.classes, args.docs, args.repeat);
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
                        email_defaults: false,
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
        other => bail!("unknown command {other} (dump-text or bench-text)"),
    }
}
