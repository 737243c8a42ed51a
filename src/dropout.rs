//! Dropout between stacked layers with a counter-based random stream: whether element
//! `index` of layer `layer`'s output is kept at optimizer step `step` is a pure hash of
//! (seed, step, layer, index), computed the same way by the WGSL kernel (`shaders/dropout.wgsl`)
//! and the f64 reference. No state is carried, so runs, resumes and adapters agree bit for bit.

/// Dropout probability `p` of one run, and the run's seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    pub p: f32,
    pub seed: u32,
}

/// lowbias32 (Chris Wellons' integer hash): a full-avalanche 32-bit mix.
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

impl Dropout {
    /// Elements whose hash is below this are dropped: round(p · 2³²), saturated.
    pub fn threshold(&self) -> u32 {
        ((self.p as f64) * 4_294_967_296.0)
            .round()
            .min(u32::MAX as f64) as u32
    }

    /// The factor kept elements are scaled by, 1 / (1 - p), in f32 as the kernel uses it.
    pub fn scale(&self) -> f32 {
        1.0 / (1.0 - self.p)
    }

    /// Whether element `index` (row · width + column) of layer `layer`'s output survives at
    /// step `step`.
    pub fn keep(&self, step: u32, layer: u32, index: u32) -> bool {
        mix(mix(mix(mix(self.seed) ^ step) ^ layer) ^ index) >= self.threshold()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_about_one_minus_p_and_depends_on_every_key() {
        let d = Dropout { p: 0.3, seed: 42 };
        let kept = (0..100_000u32).filter(|&i| d.keep(7, 1, i)).count();
        assert!((kept as f64 / 1e5 - 0.7).abs() < 0.01, "{kept}");
        let pattern = |d: &Dropout, step, layer| {
            (0..256u32)
                .map(|i| d.keep(step, layer, i))
                .collect::<Vec<_>>()
        };
        let base = pattern(&d, 7, 1);
        assert_ne!(base, pattern(&d, 8, 1));
        assert_ne!(base, pattern(&d, 7, 2));
        assert_ne!(base, pattern(&Dropout { p: 0.3, seed: 43 }, 7, 1));
        assert!((0..1000).all(|i| Dropout { p: 0.0, seed: 1 }.keep(0, 0, i)));
    }
}
