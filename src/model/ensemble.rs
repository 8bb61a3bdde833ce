//! A deep ensemble as one network: members of the same shape merged so that the merged
//! logit is the mean of the members' logits. Every consumer of a model (predict, certify,
//! attack, export, serve) then works unchanged, and a monotone ensemble stays provably
//! monotone: the zeros between members are >= 0 and the averaging weights 1/K are positive.
//!
//! The merge: the first layer is the members' first layers side by side, every later
//! hidden layer block-diagonal, the output layer the members' output kernels side by side
//! divided by K with the mean of their biases, the skip connection the mean of theirs.
//! Without a hidden layer the merged model is the mean linear model.

use super::{Activation, Constraint, Dense, Mlp};
use crate::certify::lipschitz;
use crate::error::{Error, Result};

/// Checks that constraint `c` still holds on merged tensors. Sign rules do (zeros and means
/// of same-signed values keep the sign), and so does the LMN rule (the merged network's
/// Lipschitz bound is the mean of the members', its skip the mean of theirs); a norm rule
/// on a tensor joined from several members would not.
pub fn check_constraint(c: &Constraint) -> Result<()> {
    match c {
        Constraint::NonNeg { .. } | Constraint::NonPos { .. } | Constraint::Lmn => Ok(()),
        _ => Err(Error::invalid(format!(
            "an ensemble keeps sign and lmn constraints only: {} would not hold on the \
             members' tensors joined",
            c.describe()
        ))),
    }
}

/// Merges `members` (same shape, activations and constraints) into one network whose
/// logits are the mean of theirs. One member is returned as it is.
pub fn merge(members: &[Mlp]) -> Result<Mlp> {
    let first = match members {
        [] => return Err(Error::invalid("an ensemble needs at least one member")),
        [only] => return Ok(only.clone()),
        [first, ..] => first,
    };
    for (i, m) in members.iter().enumerate().skip(1) {
        same_shape(first, m).map_err(|what| {
            Error::invalid(format!(
                "ensemble member {i} differs from member 0 in {what}"
            ))
        })?;
    }
    for l in &first.layers {
        for c in l.kernel_constraints.iter().chain(&l.bias_constraints) {
            check_constraint(c)?;
        }
    }
    let layers = (0..first.layers.len())
        .map(|l| merge_layer(members, l))
        .collect();
    let skip = first.skip.as_ref().map(|s| {
        let skips = || members.iter().filter_map(|m| m.skip.as_ref());
        Dense {
            weight: mean(skips().map(|s| &s.weight[..])),
            bias: mean(skips().map(|s| &s.bias[..])),
            ..s.clone()
        }
    });
    let merged = Mlp {
        input_dim: first.input_dim,
        sparse_input: first.sparse_input,
        layers,
        skip,
    };
    check_lipschitz(members, &merged)?;
    Ok(merged)
}

/// Where `b` differs from `a` in anything the merge needs to be the same.
fn same_shape(a: &Mlp, b: &Mlp) -> std::result::Result<(), &'static str> {
    let layer_keys = |m: &Mlp| -> Vec<_> {
        m.layers
            .iter()
            .map(|l| (l.n_in, l.n_out, l.activation))
            .collect()
    };
    fn constraints(m: &Mlp) -> Vec<(&[Constraint], &[Constraint])> {
        m.layers
            .iter()
            .chain(&m.skip)
            .map(|l| (&l.kernel_constraints[..], &l.bias_constraints[..]))
            .collect()
    }
    if (a.input_dim, a.sparse_input) != (b.input_dim, b.sparse_input) {
        Err("its input")
    } else if layer_keys(a) != layer_keys(b) {
        Err("its layer widths or activations")
    } else if a.skip.is_some() != b.skip.is_some() {
        Err("its skip connection")
    } else if constraints(a) != constraints(b) {
        Err("its constraints")
    } else {
        Ok(())
    }
}

/// The units a member takes in a merged hidden layer: its width, rounded up to a multiple
/// of 3 for `mixed` units, whose kind follows the unit's index modulo 3, so that every
/// member's units keep their kind. The padding units have no weights in or out.
fn stride(layer: &Dense) -> usize {
    match layer.activation {
        Activation::Mixed => layer.n_out.div_ceil(3) * 3,
        _ => layer.n_out,
    }
}

/// Layer `l` of the merged network.
fn merge_layer(members: &[Mlp], l: usize) -> Dense {
    let (k, base) = (members.len(), &members[0].layers[l]);
    let n = members[0].layers.len();
    fn of(m: &Mlp, l: usize) -> &Dense {
        &m.layers[l]
    }
    if n == 1 {
        // No hidden layer: the mean linear model.
        return Dense {
            weight: mean(members.iter().map(|m| &of(m, l).weight[..])),
            bias: mean(members.iter().map(|m| &of(m, l).bias[..])),
            ..base.clone()
        };
    }
    // Blocks per member: of the input units above the first layer, of the output units
    // below the output layer.
    let in_stride = (l > 0).then(|| stride(&members[0].layers[l - 1]));
    let out_stride = (l + 1 < n).then(|| stride(base));
    let n_in = in_stride.map_or(base.n_in, |s| s * k);
    let n_out = out_stride.map_or(base.n_out, |s| s * k);
    let mut d = Dense::zeros(n_in, n_out, base.activation);
    for (j, m) in members.iter().enumerate() {
        let src = of(m, l);
        let (r0, c0) = (
            in_stride.map_or(0, |s| j * s),
            out_stride.map_or(0, |s| j * s),
        );
        for (i, row) in src.weight.chunks_exact(src.n_out).enumerate() {
            let to = &mut d.weight[(r0 + i) * n_out + c0..][..src.n_out];
            match out_stride {
                Some(_) => to.copy_from_slice(row),
                // The output layer: each member's share of the mean.
                None => to
                    .iter_mut()
                    .zip(row)
                    .for_each(|(t, &w)| *t = (f64::from(w) / k as f64) as f32),
            }
        }
        if out_stride.is_some() {
            d.bias[c0..c0 + src.n_out].copy_from_slice(&src.bias);
        }
    }
    if out_stride.is_none() {
        d.bias = mean(members.iter().map(|m| &of(m, l).bias[..]));
    }
    d.kernel_constraints = match in_stride {
        Some(s) => base
            .kernel_constraints
            .iter()
            .map(|c| repeat_rows(c, s, k))
            .collect(),
        None => base.kernel_constraints.clone(),
    };
    d.bias_constraints = base.bias_constraints.clone();
    d
}

/// A constraint on some rows of a member's kernel, on the same rows of each of the `k`
/// blocks of `stride` rows of the merged kernel.
fn repeat_rows(c: &Constraint, stride: usize, k: usize) -> Constraint {
    let spread = |r: &Vec<u32>| -> Vec<u32> {
        (0..k)
            .flat_map(|j| r.iter().map(move |&i| (j * stride) as u32 + i))
            .collect()
    };
    match c {
        Constraint::NonNeg { rows: Some(r) } => Constraint::NonNeg {
            rows: Some(spread(r)),
        },
        Constraint::NonPos { rows: Some(r) } => Constraint::NonPos {
            rows: Some(spread(r)),
        },
        other => other.clone(),
    }
}

/// The elementwise mean of equally long vectors, summed in `f64` and rounded once.
fn mean<'a>(vs: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f64> = Vec::new();
    let mut k = 0usize;
    for v in vs {
        sum.resize(v.len(), 0.0);
        sum.iter_mut().zip(v).for_each(|(s, &x)| *s += f64::from(x));
        k += 1;
    }
    sum.into_iter().map(|s| (s / k as f64) as f32).collect()
}

/// A Lipschitz monotonic ensemble: every feature each member proves, the merged network
/// must prove too. It does in exact arithmetic (mean skip against mean bound) and the
/// trainer leaves a margin far above the rounding of the merge; checked rather than
/// assumed, since the certificate is the point of such a model.
fn check_lipschitz(members: &[Mlp], merged: &Mlp) -> Result<()> {
    if !merged.layers[0]
        .kernel_constraints
        .contains(&Constraint::Lmn)
    {
        return Ok(());
    }
    let all: Vec<usize> = (0..merged.input_dim).collect();
    let proved = |m: &Mlp| lipschitz::check(m, &all).0;
    let held = proved(merged);
    let lost = members
        .iter()
        .map(proved)
        .reduce(|a, b| a.iter().zip(&b).map(|(x, y)| *x && *y).collect())
        .unwrap_or_default()
        .iter()
        .zip(&held)
        .position(|(&needed, &holds)| needed && !holds);
    match lost {
        Some(j) => Err(Error::invalid(format!(
            "the merged ensemble loses the Lipschitz certificate of feature {j}, which \
             every member has"
        ))),
        None => Ok(()),
    }
}
