//! Linear relaxations of the activations on a pre-activation interval `[l, u]`: lines with
//! `lo_a z + lo_b <= act(z) <= up_a z + up_b` for every `z` in it.
//!
//! Piecewise-linear units (relu, leaky relu, the mixed units): the slopes are CROWN's
//! (the chord on the side the function bends away from, the steeper-covering piece on the
//! other), and each intercept is then computed exactly as the min (max) of
//! `act(z) - a z` over the interval's ends and kinks, where it is attained: sound for any
//! slope. Smooth units (sigmoid, tanh, softplus): a chord above a convex piece, a tangent
//! below it (mirrored on a concave piece), and across the inflection of sigmoid and tanh
//! two parallel lines with the smaller end slope, through the ends (`act - a z` is then
//! non-decreasing on the interval). Smooth intercepts are widened by [`SLACK`] to cover the
//! f32 evaluation the network uses.

use crate::model::activation::LEAKY_SLOPE;
use crate::model::Activation;

/// Relative widening of smooth bounds: covers f32 activations against f64 ones.
const SLACK: f64 = 1e-6;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Relax {
    pub lo_a: f64,
    pub lo_b: f64,
    pub up_a: f64,
    pub up_b: f64,
}

/// The activation in f64.
pub(crate) fn apply(act: Activation, z: f64, unit: usize) -> f64 {
    match act {
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Softplus => z.max(0.0) + (-z.abs()).exp().ln_1p(),
        Activation::LeakyRelu if z <= 0.0 => LEAKY_SLOPE as f64 * z,
        Activation::LeakyRelu => z,
        Activation::Relu => z.max(0.0),
        Activation::Mixed => match unit % 3 {
            0 => z.max(0.0),
            1 => z.min(0.0),
            _ => z.clamp(-1.0, 1.0),
        },
        Activation::Identity => z,
    }
}

fn derivative(act: Activation, z: f64) -> f64 {
    match act {
        Activation::Sigmoid => {
            let s = apply(act, z, 0);
            s * (1.0 - s)
        }
        Activation::Tanh => 1.0 - z.tanh().powi(2),
        _ => apply(Activation::Sigmoid, z, 0), // softplus
    }
}

fn is_smooth(act: Activation) -> bool {
    matches!(
        act,
        Activation::Sigmoid | Activation::Tanh | Activation::Softplus
    )
}

/// Widening for a smooth unit's values of magnitude around `v`.
fn slack(v: f64) -> f64 {
    SLACK * (1.0 + v.abs())
}

/// The interval `[act(l), act(u)]` of a unit (every activation is non-decreasing).
pub(crate) fn interval(act: Activation, unit: usize, l: f64, u: f64) -> (f64, f64) {
    let (a, b) = (apply(act, l, unit), apply(act, u, unit));
    if is_smooth(act) {
        (a - slack(a), b + slack(b))
    } else {
        (a, b)
    }
}

/// Kinks of a piecewise-linear unit: `(z, slope left of it, slope right of it)`.
fn kinks(act: Activation, unit: usize) -> Vec<(f64, f64, f64)> {
    match (act, unit % 3) {
        (Activation::Relu, _) | (Activation::Mixed, 0) => vec![(0.0, 0.0, 1.0)],
        (Activation::LeakyRelu, _) => vec![(0.0, LEAKY_SLOPE as f64, 1.0)],
        (Activation::Mixed, 1) => vec![(0.0, 1.0, 0.0)],
        (Activation::Mixed, _) => vec![(-1.0, 0.0, 1.0), (1.0, 1.0, 0.0)],
        _ => vec![],
    }
}

/// The relaxation of unit `unit` of an `act` layer on `[l, u]`.
pub(crate) fn relax(act: Activation, unit: usize, l: f64, u: f64) -> Relax {
    let (fl, fu) = (apply(act, l, unit), apply(act, u, unit));
    if u - l <= 1e-12 * (1.0 + l.abs()) {
        let (lo, up) = interval(act, unit, l, u);
        return Relax {
            lo_a: 0.0,
            lo_b: lo,
            up_a: 0.0,
            up_b: up,
        };
    }
    let chord = (fu - fl) / (u - l);
    if is_smooth(act) {
        return smooth(act, l, u, fl, fu, chord);
    }
    let inside: Vec<(f64, f64, f64)> = kinks(act, unit)
        .into_iter()
        .filter(|&(k, _, _)| l < k && k < u)
        .collect();
    let (lo_a, up_a) = match inside.as_slice() {
        // One kink: the chord on the side the unit bends away from, the piece covering
        // more of the interval on the other.
        &[(k, left, right)] => {
            let covering = if u - k >= k - l { right } else { left };
            if right > left {
                (covering, chord)
            } else {
                (chord, covering)
            }
        }
        _ => (chord, chord),
    };
    // Intercepts: exact extremes of act(z) - a z over the ends and the kinks inside.
    let points: Vec<f64> = [l, u]
        .into_iter()
        .chain(inside.iter().map(|&(k, _, _)| k))
        .collect();
    let gap = |a: f64| points.iter().map(move |&z| apply(act, z, unit) - a * z);
    Relax {
        lo_a,
        lo_b: gap(lo_a).fold(f64::INFINITY, f64::min),
        up_a,
        up_b: gap(up_a).fold(f64::NEG_INFINITY, f64::max),
    }
}

/// Sigmoid, tanh (convex below 0, concave above) and softplus (convex).
fn smooth(act: Activation, l: f64, u: f64, fl: f64, fu: f64, chord: f64) -> Relax {
    let m = 0.5 * (l + u);
    let tangent_a = derivative(act, m);
    let tangent_b = apply(act, m, 0) - tangent_a * m;
    let chord_b = fl - chord * l;
    let convex = act == Activation::Softplus || u <= 0.0;
    let (lo_a, lo_b, up_a, up_b) = if convex {
        (tangent_a, tangent_b, chord, chord_b)
    } else if l >= 0.0 {
        (chord, chord_b, tangent_a, tangent_b)
    } else {
        let a = derivative(act, l).min(derivative(act, u));
        (a, fl - a * l, a, fu - a * u)
    };
    let s = slack(fl.abs().max(fu.abs()));
    Relax {
        lo_a,
        lo_b: lo_b - s,
        up_a,
        up_b: up_b + s,
    }
}
