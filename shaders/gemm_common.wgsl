// Shared by gemm.wgsl and gemm_subgroup.wgsl: their parameters, flags and store. Not a
// module of its own: the host splices it in where a module has the line
// `// @include gemm_common.wgsl` (`gpu::typed_source`), and it uses that module's bindings
// `p` (the parameters), `bias`, `aux` and `c` and its alias `c_t`. One copy of the fused
// Elman steps' epilogue for both (gemm_quads.wgsl's stores of 4 outputs a word have their
// own, written for vec4s).

struct GemmParams {
    m: u32, n: u32, k: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, c_rs: u32,
    bias_off: u32, bias2_off: u32,
    flags: u32,     // bit 0: add bias, bit 1: add bias2, bit 2: accumulate into C
    k_slice: u32,   // split-K: k values per slice (0: no split)
    slices: u32,    // split-K: S, the number of slices (reduce kernel)
}

const ADD_BIAS: u32 = 1u;
const ADD_BIAS2: u32 = 2u;
const ACCUMULATE: u32 = 4u;
const STEP_FORWARD: u32 = 8u;
const STEP_BACKWARD: u32 = 16u;
const RELU: u32 = 32u;

// Stores one finished sum of C[m, n]: raw into split-K slice z's scratch, or with the
// biases (and C) added, in that order.
fn store_c(m: u32, n: u32, z: u32, sum: f32) {
    if (p.k_slice > 0u) {
        c[p.c_off + z * p.m * p.n + m * p.n + n] = c_t(sum);
        return;
    }
    if ((p.flags & (STEP_FORWARD | STEP_BACKWARD)) != 0u) {
        let e = m * p.n + n;
        let relu = (p.flags & RELU) != 0u;
        let g = f32(bias[p.bias_off + e]) + sum;
        var out: f32;
        if ((p.flags & STEP_FORWARD) != 0u) {
            out = select(tanh(g), max(g, 0.0), relu);
        } else {
            let h = f32(aux[p.bias2_off + e]);
            out = g * select(1.0 - h * h, select(0.0, 1.0, h > 0.0), relu);
        }
        c[p.c_off + m * p.c_rs + n] = c_t(out);
        return;
    }
    var v = sum;
    if ((p.flags & ADD_BIAS) != 0u) {
        v = v + f32(bias[p.bias_off + n]);
    }
    if ((p.flags & ADD_BIAS2) != 0u) {
        v = v + f32(bias[p.bias2_off + n]);
    }
    let at = p.c_off + m * p.c_rs + n;
    if ((p.flags & ACCUMULATE) != 0u) {
        v = f32(c[at]) + v;
    }
    c[at] = c_t(v);
}
