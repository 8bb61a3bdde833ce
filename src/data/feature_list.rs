//! Feature lists: the one grammar of `train --monotone-features / --feature-directions`,
//! `certify --features / --directions` and `attack --features`.
//!
//! - One entry a line; blank lines are skipped.
//! - A feature is its name or its 0-based index; a name wins (a feature called `3` is that
//!   feature, not index 3).
//! - `#` at the start of a line or after a blank starts a comment (`7  # why`), unless the
//!   whole line is a valid entry naming a feature by name: names such as `#c` or
//!   `char_freq_#` still work.
//! - Direction lists have `FEATURE DIRECTION` lines: `+1`/`1`/`up`, `-1`/`down`, or
//!   `0`/`free` (not attacker-controlled, as every unlisted feature). A feature given two
//!   different directions is an error.
//! - A list that declares nothing is an error: an empty file is a mistake more often than a
//!   request for "no features".
//!
//! Errors name the file, the line and the field.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// Parses a feature list (see the module doc) into sorted, unique 0-based indices.
pub fn resolve_feature_list(
    names: Option<&[String]>,
    n_features: usize,
    text: &str,
    path: &Path,
) -> Result<Vec<usize>> {
    let by_name = index_by_name(names);
    let mut out = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let Some(entry) = entry(raw, |line| by_name.contains_key(line)) else {
            continue;
        };
        out.push(match by_name.get(entry) {
            Some(&i) => i,
            None => feature_index(entry, names.is_some(), n_features, path, k + 1)?,
        });
    }
    if out.is_empty() {
        return Err(Error::format(path, "declares no features"));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Features by the direction in which additions move them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directions {
    /// Additions can only raise these (direction +1): the score must not decrease in them.
    pub up: Vec<usize>,
    /// Additions can only lower these (direction -1, e.g. "at most N words"): the score
    /// must not increase in them.
    pub down: Vec<usize>,
}

/// Parses a feature-direction list (see the module doc); `up` and `down` come sorted.
pub fn resolve_direction_list(
    names: Option<&[String]>,
    n_features: usize,
    text: &str,
    path: &Path,
) -> Result<Directions> {
    let by_name = index_by_name(names);
    let named_line = |line: &str| {
        line.rsplit_once(char::is_whitespace)
            .is_some_and(|(f, d)| by_name.contains_key(f.trim()) && direction(d).is_some())
    };
    let mut seen: HashMap<usize, (i8, usize)> = HashMap::new();
    for (k, raw) in text.lines().enumerate() {
        let Some(line) = entry(raw, named_line) else {
            continue;
        };
        let bad = |msg: String| Error::parse(path, k + 1, "direction", msg);
        let Some((feature, dir)) = line.rsplit_once(char::is_whitespace) else {
            return Err(bad(format!(
                "`{line}`: expected FEATURE DIRECTION (+1, -1 or 0)"
            )));
        };
        let feature = feature.trim();
        let i = match by_name.get(feature) {
            Some(&i) => i,
            None => feature_index(feature, names.is_some(), n_features, path, k + 1)?,
        };
        let d = direction(dir)
            .ok_or_else(|| bad(format!("`{dir}` is not a direction (+1, -1 or 0)")))?;
        if let Some(&(prev, at)) = seen.get(&i) {
            if prev != d {
                return Err(bad(format!(
                    "feature `{feature}` was given direction {prev} on line {at}"
                )));
            }
        }
        seen.insert(i, (d, k + 1));
    }
    let mut dirs = Directions::default();
    for (&i, &(d, _)) in &seen {
        match d {
            1 => dirs.up.push(i),
            -1 => dirs.down.push(i),
            _ => {}
        }
    }
    if dirs.up.is_empty() && dirs.down.is_empty() {
        return Err(Error::format(
            path,
            "gives no feature a direction (+1 or -1)",
        ));
    }
    dirs.up.sort_unstable();
    dirs.down.sort_unstable();
    Ok(dirs)
}

/// The entry on a line: the whole (trimmed) line when `named` accepts it, else the line
/// without its comment; `None` when nothing is left.
fn entry(raw: &str, named: impl Fn(&str) -> bool) -> Option<&str> {
    let line = raw.trim();
    if named(line) {
        return Some(line);
    }
    let cut = line
        .char_indices()
        .find(|&(i, c)| {
            c == '#'
                && line[..i]
                    .chars()
                    .next_back()
                    .is_none_or(char::is_whitespace)
        })
        .map_or(line.len(), |(i, _)| i);
    Some(line[..cut].trim()).filter(|e| !e.is_empty())
}

fn direction(text: &str) -> Option<i8> {
    match text.to_ascii_lowercase().as_str() {
        "+1" | "1" | "up" => Some(1),
        "-1" | "down" => Some(-1),
        "0" | "free" => Some(0),
        _ => None,
    }
}

/// Feature name -> its first index.
fn index_by_name(names: Option<&[String]>) -> HashMap<&str, usize> {
    let mut by_name = HashMap::new();
    for (i, n) in names.unwrap_or(&[]).iter().enumerate() {
        by_name.entry(n.as_str()).or_insert(i);
    }
    by_name
}

/// A 0-based feature index written on line `line` of `path` (names were tried first).
fn feature_index(
    text: &str,
    named: bool,
    n_features: usize,
    path: &Path,
    line: usize,
) -> Result<usize> {
    match text.parse::<usize>() {
        Ok(i) if i < n_features => Ok(i),
        Ok(i) => Err(Error::parse(
            path,
            line,
            "feature",
            format!("index {i} is out of range (the model has {n_features} features)"),
        )),
        Err(_) => {
            let hint = if named {
                "no feature has this name"
            } else {
                "the features have no names: give 0-based indices"
            };
            Err(Error::parse(
                path,
                line,
                "feature",
                format!("unknown feature `{text}` ({hint})"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_win_over_indices_and_comments() {
        let n = names(&["3", "b", "#c"]);
        let p = Path::new("list.txt");
        let r = resolve_feature_list(Some(&n), 3, "# comment\n\n3\n#c\n 1 \n", p).unwrap();
        assert_eq!(r, vec![0, 1, 2]);
        let e = resolve_feature_list(Some(&n), 3, "b\nzz\n", p).unwrap_err();
        assert!(e.to_string().starts_with("list.txt:2:"), "{e}");
        assert!(resolve_feature_list(None, 3, "5\n", p).is_err());
    }

    #[test]
    fn trailing_comments_and_empty_lists() {
        let n = names(&["make", "char_freq_#", "x"]);
        let p = Path::new("f.txt");
        let text = "make # spammy\nchar_freq_#\n2\t# by index\n";
        assert_eq!(
            resolve_feature_list(Some(&n), 3, text, p).unwrap(),
            vec![0, 1, 2]
        );
        for empty in ["", "\n\n", "# only a comment\n"] {
            let e = resolve_feature_list(Some(&n), 3, empty, p).unwrap_err();
            assert!(e.to_string().contains("declares no features"), "{e}");
        }
        // attack's former grammar: a name with `#` inside, an index with a comment.
        let n2 = names(&["word_freq_make", "char_freq_#", "3"]);
        let text = "# comment\nword_freq_make\n\n  char_freq_#  \n3\n1 # by index\n";
        assert_eq!(
            resolve_feature_list(Some(&n2), 3, text, p).unwrap(),
            vec![0, 1, 2]
        );
        // `c#` is not a comment: `#` must start the line or follow a blank.
        let e = resolve_feature_list(Some(&n), 3, "c#\n", p).unwrap_err();
        assert!(e.to_string().contains("unknown feature `c#`"), "{e}");
    }

    #[test]
    fn direction_lists() {
        let n = names(&["a", "b", "#c", "d"]);
        let p = Path::new("d.txt");
        let text = "# header\na +1\nb down  # at most N words\n#c up\nd 0\na 1\n";
        let d = resolve_direction_list(Some(&n), 4, text, p).unwrap();
        assert_eq!((d.up, d.down), (vec![0, 2], vec![1]));
        let e = resolve_direction_list(Some(&n), 4, "a +1\na -1\n", p).unwrap_err();
        assert!(e.to_string().contains("on line 1"), "{e}");
        let e = resolve_direction_list(Some(&n), 4, "a sideways\n", p).unwrap_err();
        assert!(e.to_string().starts_with("d.txt:1: field direction"), "{e}");
        let e = resolve_direction_list(Some(&n), 4, "a\n", p).unwrap_err();
        assert!(e.to_string().contains("expected FEATURE DIRECTION"), "{e}");
        let e = resolve_direction_list(Some(&n), 4, "a 0\n# none\n", p).unwrap_err();
        assert!(e.to_string().contains("no feature a direction"), "{e}");
    }
}
