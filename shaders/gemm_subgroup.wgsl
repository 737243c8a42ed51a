// Subgroup-broadcast GEMMs for software adapters whose subgroups are 8 lanes. lavapipe runs
// 8 invocations as one 256-bit SIMD group; a storage-buffer load whose address is not built
// from constants (Mesa 25.0 does not treat workgroup ids or loop counters as uniform) costs
// each lane a bounds-checked, branching scalar load, while a uniform-buffer load with such an
// address is a branch-free gather (BENCHMARKS.md, "operands read through uniform-buffer
// windows"). Entry points: `gemm_subgroup` (both operands from storage), and below
// `gemm_subgroup_window` and `gemm_subgroup_window_a` (B or A through a 64 KiB uniform
// window). Same parameters, bindings, results as gemm.wgsl's kernels (split-K here only):
//   C[m, n] = sum_k A(m, k) * B(k, n)  (+ bias[n]) (+ bias2[n])  (+ C[m, n] if ACCUMULATE)
// A subgroup owns a 16x16 tile of C; lane l owns its columns 2l and 2l + 1 (32 accumulators).
// For each k, lane l loads A rows 2l and 2l + 1 and B columns 2l and 2l + 1 (4 loads; 2
// with PACKED_PAIRS, below), and
// subgroupBroadcast from each constant lane shares the 16 A values: 4 loads per 32
// multiply-adds, against 12 for the register-blocked kernel. The accumulators are unrolled by
// hand so that every index is a constant (they stay in registers), and k is unrolled by two.
// Sums run over k in ascending order: deterministic.
// Only valid when the subgroup size is 8 (the host checks the adapter's subgroup sizes).
// A workgroup of 64 invocations (8 subgroups: 2 down x 4 across) owns 32 rows x 64 columns.
// Dispatch: (ceil(N / 64), ceil(M / 32), S) as the register-blocked kernel.
// A module of its own because its subgroup operations need the SUBGROUP feature, which the
// kernels of gemm.wgsl must not depend on; the parameter struct and the store epilogue
// repeat gemm.wgsl's.
//
// Fused Elman steps (the variant with A_FROM_C, flags STEP_FORWARD or STEP_BACKWARD): the
// product reads its A rows through the C binding (the recurrence reads h[t] or da[t + 1]
// from the buffer it writes h[t + 1] or da[t] into, at disjoint offsets; one dispatch cannot
// bind a buffer both read-only and read-write) and the store finishes the step in place of
// `rnn_step_combine_*` (shaders/rnn_cell.wgsl), with the same operations in the same order:
//   STEP_FORWARD:  C[m, n] = act(bias[bias_off + m·N + n] + sum)            (bias: pre)
//   STEP_BACKWARD: C[m, n] = (bias[bias_off + m·N + n] + sum)                (bias: dh_out)
//                            · act'(aux[bias2_off + m·N + n])                (aux: hs)
// act is tanh, or ReLU with the RELU flag; act' is taken from the output as there.

// @include gemm_common.wgsl

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<a_t>;
@group(0) @binding(2) var<storage, read> b: array<b_t>;
@group(0) @binding(3) var<storage, read> bias: array<bias_t>;
@group(0) @binding(4) var<storage, read_write> c: array<c_t>;
// The same A and B buffers as raw 4-byte words (bound by the host for both variants).
@group(0) @binding(5) var<storage, read> a_words: array<u32>;
@group(0) @binding(6) var<storage, read> b_words: array<u32>;
// STEP_BACKWARD's h[t + 1] (any read-only buffer where unused).
@group(0) @binding(7) var<storage, read> aux: array<aux_t>;

// Set by the host (a pipeline constant) for f16 A and B read along k with unit stride, at
// even offsets and strides, and k slices starting at even k: then each pair of operands
// (k, k + 1) is one 4-byte word, one load instead of two (lavapipe's cost is the loads).
override PACKED_PAIRS: bool = false;

// Set by the host for the fused Elman steps: A is read through the C binding (never with
// PACKED_PAIRS).
override A_FROM_C: bool = false;

fn a_at(i: u32) -> f32 {
    if (A_FROM_C) {
        return f32(c[i]);
    }
    return f32(a[i]);
}

// (A(row at base, k), A(row at base, k + 1)); base = a_off + row·a_rs.
fn a_pair(base: u32, k: u32) -> vec2<f32> {
    if (PACKED_PAIRS && !A_FROM_C) {
        return unpack2x16float(a_words[(base + k) >> 1u]);
    }
    return vec2<f32>(a_at(base + k * p.a_cs), a_at(base + (k + 1u) * p.a_cs));
}

// (B(k, column at base), B(k + 1, column at base)); base = b_off + column·b_cs.
fn b_pair(base: u32, k: u32) -> vec2<f32> {
    if (PACKED_PAIRS) {
        return unpack2x16float(b_words[(base + k) >> 1u]);
    }
    return vec2<f32>(f32(b[base + k * p.b_rs]), f32(b[base + (k + 1u) * p.b_rs]));
}

// A(row at base, k) alone (an odd k left at the end of a slice).
fn a_one(base: u32, k: u32) -> f32 {
    if (PACKED_PAIRS && !A_FROM_C) {
        return unpack2x16float(a_words[(base + k) >> 1u])[(base + k) & 1u];
    }
    return a_at(base + k * p.a_cs);
}

fn b_one(base: u32, k: u32) -> f32 {
    if (PACKED_PAIRS) {
        return unpack2x16float(b_words[(base + k) >> 1u])[(base + k) & 1u];
    }
    return f32(b[base + k * p.b_rs]);
}

// C[m, n] = value as store_c finishes it (gemm_common.wgsl), where (m, n) is inside C.
fn store(m: u32, n: u32, z: u32, value: f32) {
    if (m >= p.m || n >= p.n) {
        return;
    }
    store_c(m, n, z, value);
}

// How many of the `tile_rows` rows from row0 are within M. The kernels store their tiles
// as a loop over these rows, taking each row's accumulators from the front of the array
// and moving the rest up (constant indices only, so the accumulators stay out of memory):
// the store's code is then compiled once instead of once an accumulator, which on lavapipe
// cuts a kernel's compile time from seconds to a fraction of one (BENCHMARKS.md, "stores
// as loops"); the moves, once a tile, cost little next to the stores.
fn rows_in_range(row0: u32, tile_rows: u32) -> u32 {
    return select(0u, min(tile_rows, p.m - row0), row0 < p.m);
}

@compute @workgroup_size(64)
fn gemm_subgroup(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let group = local / 8u;
    let row0 = wid.y * 32u + (group / 4u) * 16u;
    let col0 = wid.x * 64u + (group % 4u) * 16u;
    let split = p.k_slice > 0u;
    let k_begin = select(0u, wid.z * p.k_slice, split);
    let k_end = select(p.k, min(k_begin + p.k_slice, p.k), split);
    // Out-of-range rows and columns read the last valid one (results not stored), so every
    // lane takes part in every broadcast.
    let a_lo = p.a_off + min(row0 + 2u * lane, p.m - 1u) * p.a_rs;
    let a_hi = p.a_off + min(row0 + 2u * lane + 1u, p.m - 1u) * p.a_rs;
    let b_0 = p.b_off + min(col0 + 2u * lane, p.n - 1u) * p.b_cs;
    let b_1 = p.b_off + min(col0 + 2u * lane + 1u, p.n - 1u) * p.b_cs;
    var acc_0_0 = 0.0;
    var acc_0_1 = 0.0;
    var acc_1_0 = 0.0;
    var acc_1_1 = 0.0;
    var acc_2_0 = 0.0;
    var acc_2_1 = 0.0;
    var acc_3_0 = 0.0;
    var acc_3_1 = 0.0;
    var acc_4_0 = 0.0;
    var acc_4_1 = 0.0;
    var acc_5_0 = 0.0;
    var acc_5_1 = 0.0;
    var acc_6_0 = 0.0;
    var acc_6_1 = 0.0;
    var acc_7_0 = 0.0;
    var acc_7_1 = 0.0;
    var acc_8_0 = 0.0;
    var acc_8_1 = 0.0;
    var acc_9_0 = 0.0;
    var acc_9_1 = 0.0;
    var acc_10_0 = 0.0;
    var acc_10_1 = 0.0;
    var acc_11_0 = 0.0;
    var acc_11_1 = 0.0;
    var acc_12_0 = 0.0;
    var acc_12_1 = 0.0;
    var acc_13_0 = 0.0;
    var acc_13_1 = 0.0;
    var acc_14_0 = 0.0;
    var acc_14_1 = 0.0;
    var acc_15_0 = 0.0;
    var acc_15_1 = 0.0;
    // k two at a time (all loads of both first), then the odd one left; each accumulator
    // still adds its products in ascending k.
    var kk = k_begin;
    for (; kk + 1u < k_end; kk += 2u) {
        let lo = a_pair(a_lo, kk);
        let hi = a_pair(a_hi, kk);
        let x0 = b_pair(b_0, kk);
        let x1 = b_pair(b_1, kk);
        let loa = lo.x;
        let hia = hi.x;
        let x0a = x0.x;
        let x1a = x1.x;
        let lob = lo.y;
        let hib = hi.y;
        let x0b = x0.y;
        let x1b = x1.y;
        let r0a = subgroupBroadcast(loa, 0u);
        let r1a = subgroupBroadcast(hia, 0u);
        let r2a = subgroupBroadcast(loa, 1u);
        let r3a = subgroupBroadcast(hia, 1u);
        let r4a = subgroupBroadcast(loa, 2u);
        let r5a = subgroupBroadcast(hia, 2u);
        let r6a = subgroupBroadcast(loa, 3u);
        let r7a = subgroupBroadcast(hia, 3u);
        let r8a = subgroupBroadcast(loa, 4u);
        let r9a = subgroupBroadcast(hia, 4u);
        let r10a = subgroupBroadcast(loa, 5u);
        let r11a = subgroupBroadcast(hia, 5u);
        let r12a = subgroupBroadcast(loa, 6u);
        let r13a = subgroupBroadcast(hia, 6u);
        let r14a = subgroupBroadcast(loa, 7u);
        let r15a = subgroupBroadcast(hia, 7u);
        acc_0_0 = acc_0_0 + r0a * x0a;
        acc_0_1 = acc_0_1 + r0a * x1a;
        acc_1_0 = acc_1_0 + r1a * x0a;
        acc_1_1 = acc_1_1 + r1a * x1a;
        acc_2_0 = acc_2_0 + r2a * x0a;
        acc_2_1 = acc_2_1 + r2a * x1a;
        acc_3_0 = acc_3_0 + r3a * x0a;
        acc_3_1 = acc_3_1 + r3a * x1a;
        acc_4_0 = acc_4_0 + r4a * x0a;
        acc_4_1 = acc_4_1 + r4a * x1a;
        acc_5_0 = acc_5_0 + r5a * x0a;
        acc_5_1 = acc_5_1 + r5a * x1a;
        acc_6_0 = acc_6_0 + r6a * x0a;
        acc_6_1 = acc_6_1 + r6a * x1a;
        acc_7_0 = acc_7_0 + r7a * x0a;
        acc_7_1 = acc_7_1 + r7a * x1a;
        acc_8_0 = acc_8_0 + r8a * x0a;
        acc_8_1 = acc_8_1 + r8a * x1a;
        acc_9_0 = acc_9_0 + r9a * x0a;
        acc_9_1 = acc_9_1 + r9a * x1a;
        acc_10_0 = acc_10_0 + r10a * x0a;
        acc_10_1 = acc_10_1 + r10a * x1a;
        acc_11_0 = acc_11_0 + r11a * x0a;
        acc_11_1 = acc_11_1 + r11a * x1a;
        acc_12_0 = acc_12_0 + r12a * x0a;
        acc_12_1 = acc_12_1 + r12a * x1a;
        acc_13_0 = acc_13_0 + r13a * x0a;
        acc_13_1 = acc_13_1 + r13a * x1a;
        acc_14_0 = acc_14_0 + r14a * x0a;
        acc_14_1 = acc_14_1 + r14a * x1a;
        acc_15_0 = acc_15_0 + r15a * x0a;
        acc_15_1 = acc_15_1 + r15a * x1a;
        let r0b = subgroupBroadcast(lob, 0u);
        let r1b = subgroupBroadcast(hib, 0u);
        let r2b = subgroupBroadcast(lob, 1u);
        let r3b = subgroupBroadcast(hib, 1u);
        let r4b = subgroupBroadcast(lob, 2u);
        let r5b = subgroupBroadcast(hib, 2u);
        let r6b = subgroupBroadcast(lob, 3u);
        let r7b = subgroupBroadcast(hib, 3u);
        let r8b = subgroupBroadcast(lob, 4u);
        let r9b = subgroupBroadcast(hib, 4u);
        let r10b = subgroupBroadcast(lob, 5u);
        let r11b = subgroupBroadcast(hib, 5u);
        let r12b = subgroupBroadcast(lob, 6u);
        let r13b = subgroupBroadcast(hib, 6u);
        let r14b = subgroupBroadcast(lob, 7u);
        let r15b = subgroupBroadcast(hib, 7u);
        acc_0_0 = acc_0_0 + r0b * x0b;
        acc_0_1 = acc_0_1 + r0b * x1b;
        acc_1_0 = acc_1_0 + r1b * x0b;
        acc_1_1 = acc_1_1 + r1b * x1b;
        acc_2_0 = acc_2_0 + r2b * x0b;
        acc_2_1 = acc_2_1 + r2b * x1b;
        acc_3_0 = acc_3_0 + r3b * x0b;
        acc_3_1 = acc_3_1 + r3b * x1b;
        acc_4_0 = acc_4_0 + r4b * x0b;
        acc_4_1 = acc_4_1 + r4b * x1b;
        acc_5_0 = acc_5_0 + r5b * x0b;
        acc_5_1 = acc_5_1 + r5b * x1b;
        acc_6_0 = acc_6_0 + r6b * x0b;
        acc_6_1 = acc_6_1 + r6b * x1b;
        acc_7_0 = acc_7_0 + r7b * x0b;
        acc_7_1 = acc_7_1 + r7b * x1b;
        acc_8_0 = acc_8_0 + r8b * x0b;
        acc_8_1 = acc_8_1 + r8b * x1b;
        acc_9_0 = acc_9_0 + r9b * x0b;
        acc_9_1 = acc_9_1 + r9b * x1b;
        acc_10_0 = acc_10_0 + r10b * x0b;
        acc_10_1 = acc_10_1 + r10b * x1b;
        acc_11_0 = acc_11_0 + r11b * x0b;
        acc_11_1 = acc_11_1 + r11b * x1b;
        acc_12_0 = acc_12_0 + r12b * x0b;
        acc_12_1 = acc_12_1 + r12b * x1b;
        acc_13_0 = acc_13_0 + r13b * x0b;
        acc_13_1 = acc_13_1 + r13b * x1b;
        acc_14_0 = acc_14_0 + r14b * x0b;
        acc_14_1 = acc_14_1 + r14b * x1b;
        acc_15_0 = acc_15_0 + r15b * x0b;
        acc_15_1 = acc_15_1 + r15b * x1b;
    }
    if (kk < k_end) {
        let loa = a_one(a_lo, kk);
        let hia = a_one(a_hi, kk);
        let x0a = b_one(b_0, kk);
        let x1a = b_one(b_1, kk);
        let r0a = subgroupBroadcast(loa, 0u);
        let r1a = subgroupBroadcast(hia, 0u);
        let r2a = subgroupBroadcast(loa, 1u);
        let r3a = subgroupBroadcast(hia, 1u);
        let r4a = subgroupBroadcast(loa, 2u);
        let r5a = subgroupBroadcast(hia, 2u);
        let r6a = subgroupBroadcast(loa, 3u);
        let r7a = subgroupBroadcast(hia, 3u);
        let r8a = subgroupBroadcast(loa, 4u);
        let r9a = subgroupBroadcast(hia, 4u);
        let r10a = subgroupBroadcast(loa, 5u);
        let r11a = subgroupBroadcast(hia, 5u);
        let r12a = subgroupBroadcast(loa, 6u);
        let r13a = subgroupBroadcast(hia, 6u);
        let r14a = subgroupBroadcast(loa, 7u);
        let r15a = subgroupBroadcast(hia, 7u);
        acc_0_0 = acc_0_0 + r0a * x0a;
        acc_0_1 = acc_0_1 + r0a * x1a;
        acc_1_0 = acc_1_0 + r1a * x0a;
        acc_1_1 = acc_1_1 + r1a * x1a;
        acc_2_0 = acc_2_0 + r2a * x0a;
        acc_2_1 = acc_2_1 + r2a * x1a;
        acc_3_0 = acc_3_0 + r3a * x0a;
        acc_3_1 = acc_3_1 + r3a * x1a;
        acc_4_0 = acc_4_0 + r4a * x0a;
        acc_4_1 = acc_4_1 + r4a * x1a;
        acc_5_0 = acc_5_0 + r5a * x0a;
        acc_5_1 = acc_5_1 + r5a * x1a;
        acc_6_0 = acc_6_0 + r6a * x0a;
        acc_6_1 = acc_6_1 + r6a * x1a;
        acc_7_0 = acc_7_0 + r7a * x0a;
        acc_7_1 = acc_7_1 + r7a * x1a;
        acc_8_0 = acc_8_0 + r8a * x0a;
        acc_8_1 = acc_8_1 + r8a * x1a;
        acc_9_0 = acc_9_0 + r9a * x0a;
        acc_9_1 = acc_9_1 + r9a * x1a;
        acc_10_0 = acc_10_0 + r10a * x0a;
        acc_10_1 = acc_10_1 + r10a * x1a;
        acc_11_0 = acc_11_0 + r11a * x0a;
        acc_11_1 = acc_11_1 + r11a * x1a;
        acc_12_0 = acc_12_0 + r12a * x0a;
        acc_12_1 = acc_12_1 + r12a * x1a;
        acc_13_0 = acc_13_0 + r13a * x0a;
        acc_13_1 = acc_13_1 + r13a * x1a;
        acc_14_0 = acc_14_0 + r14a * x0a;
        acc_14_1 = acc_14_1 + r14a * x1a;
        acc_15_0 = acc_15_0 + r15a * x0a;
        acc_15_1 = acc_15_1 + r15a * x1a;
    }
    let n0 = col0 + 2u * lane;
    // The stores as a loop over the rows in range (see rows_in_range).
    var tile = array<vec2<f32>, 16>(
        vec2<f32>(acc_0_0, acc_0_1),
        vec2<f32>(acc_1_0, acc_1_1),
        vec2<f32>(acc_2_0, acc_2_1),
        vec2<f32>(acc_3_0, acc_3_1),
        vec2<f32>(acc_4_0, acc_4_1),
        vec2<f32>(acc_5_0, acc_5_1),
        vec2<f32>(acc_6_0, acc_6_1),
        vec2<f32>(acc_7_0, acc_7_1),
        vec2<f32>(acc_8_0, acc_8_1),
        vec2<f32>(acc_9_0, acc_9_1),
        vec2<f32>(acc_10_0, acc_10_1),
        vec2<f32>(acc_11_0, acc_11_1),
        vec2<f32>(acc_12_0, acc_12_1),
        vec2<f32>(acc_13_0, acc_13_1),
        vec2<f32>(acc_14_0, acc_14_1),
        vec2<f32>(acc_15_0, acc_15_1),
    );
    for (var r = 0u; r < rows_in_range(row0, 16u); r++) {
        store(row0 + r, n0, wid.z, tile[0].x);
        store(row0 + r, n0 + 1u, wid.z, tile[0].y);
        for (var i = 0u; i < 15u; i++) {
            tile[i] = tile[i + 1u];
        }
    }
}

// ---------------------------------------------------------------------------------------
// The same product with B read through a uniform-buffer window (`gemm_subgroup_window`).
// On lavapipe a load from a storage buffer whose address is not a compile-time constant
// costs each lane a branchy bounds-checked scalar load (about 12 instructions), while the
// same load from a uniform buffer is a branch-free gather (about 2.5 instructions a lane):
// DESIGN.md. A uniform binding holds at most 64 KiB, so the host binds the 64 KiB of B's
// buffer that this dispatch reads (B's offset below is relative to it) and splits a larger
// B into column ranges, one dispatch each (`ops::gemm`). A is read as in `gemm_subgroup`.
// A subgroup owns a 16x32 tile of C: lane l loads A rows 2l and 2l + 1 (shared by
// subgroupBroadcast) and B columns 4l .. 4l + 3, one vec4 of accumulators per row (64
// accumulators a lane). A workgroup of 64 invocations (8 subgroups down) owns 128 rows x 32
// columns. Dispatch: (ceil(N / 32), ceil(M / 128), 1); no split-K, no fused step.
// Sums run over k in ascending order, one accumulator per output: the same bits as the
// other formulations on an adapter that does not contract multiply-adds.

// The operand's 64 KiB window (B in `gemm_subgroup_window`, A in `gemm_subgroup_window_a`)
// as 4-byte words: f32 values, or f16 pairs (k, k + 1) with PACKED_PAIRS.
@group(0) @binding(8) var<uniform> window: array<vec4<u32>, 4096>;

fn window_word(w: u32) -> u32 {
    return window[w >> 2u][w & 3u];
}

// The operand's values at k and k + 1 of the line (B's column, A's row) that starts at
// `base` of the window, `stride` apart along k (unit stride with PACKED_PAIRS).
fn window_pair(base: u32, k: u32, stride: u32) -> vec2<f32> {
    if (PACKED_PAIRS) {
        return unpack2x16float(window_word((base + k) >> 1u));
    }
    return vec2<f32>(
        bitcast<f32>(window_word(base + k * stride)),
        bitcast<f32>(window_word(base + (k + 1u) * stride)),
    );
}

fn window_one(base: u32, k: u32, stride: u32) -> f32 {
    if (PACKED_PAIRS) {
        return unpack2x16float(window_word((base + k) >> 1u))[(base + k) & 1u];
    }
    return bitcast<f32>(window_word(base + k * stride));
}

// acc[r] += A(row 2·(r / 2) + r % 2 of the subgroup's tile, k) · x, where lane j's `lo`
// and `hi` hold A's rows 2j and 2j + 1 at k, and x = B(k, this lane's 4 columns).
fn add_products(acc: ptr<function, array<vec4<f32>, 16>>, lo: f32, hi: f32, x: vec4<f32>) {
    (*acc)[0] = (*acc)[0] + subgroupBroadcast(lo, 0u) * x;
    (*acc)[1] = (*acc)[1] + subgroupBroadcast(hi, 0u) * x;
    (*acc)[2] = (*acc)[2] + subgroupBroadcast(lo, 1u) * x;
    (*acc)[3] = (*acc)[3] + subgroupBroadcast(hi, 1u) * x;
    (*acc)[4] = (*acc)[4] + subgroupBroadcast(lo, 2u) * x;
    (*acc)[5] = (*acc)[5] + subgroupBroadcast(hi, 2u) * x;
    (*acc)[6] = (*acc)[6] + subgroupBroadcast(lo, 3u) * x;
    (*acc)[7] = (*acc)[7] + subgroupBroadcast(hi, 3u) * x;
    (*acc)[8] = (*acc)[8] + subgroupBroadcast(lo, 4u) * x;
    (*acc)[9] = (*acc)[9] + subgroupBroadcast(hi, 4u) * x;
    (*acc)[10] = (*acc)[10] + subgroupBroadcast(lo, 5u) * x;
    (*acc)[11] = (*acc)[11] + subgroupBroadcast(hi, 5u) * x;
    (*acc)[12] = (*acc)[12] + subgroupBroadcast(lo, 6u) * x;
    (*acc)[13] = (*acc)[13] + subgroupBroadcast(hi, 6u) * x;
    (*acc)[14] = (*acc)[14] + subgroupBroadcast(lo, 7u) * x;
    (*acc)[15] = (*acc)[15] + subgroupBroadcast(hi, 7u) * x;
}

// Stores one row's 4 accumulated columns (n .. n + 3) through `store`.
fn store_columns(m: u32, n: u32, v: vec4<f32>) {
    store(m, n, 0u, v.x);
    store(m, n + 1u, 0u, v.y);
    store(m, n + 2u, 0u, v.z);
    store(m, n + 3u, 0u, v.w);
}

@compute @workgroup_size(64)
fn gemm_subgroup_window(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = wid.y * 128u + (local / 8u) * 16u;
    let col0 = wid.x * 32u;
    // Out-of-range rows and columns read the last valid one (results not stored).
    let a_lo = p.a_off + min(row0 + 2u * lane, p.m - 1u) * p.a_rs;
    let a_hi = p.a_off + min(row0 + 2u * lane + 1u, p.m - 1u) * p.a_rs;
    let n0 = col0 + 4u * lane;
    let b_0 = p.b_off + min(n0, p.n - 1u) * p.b_cs;
    let b_1 = p.b_off + min(n0 + 1u, p.n - 1u) * p.b_cs;
    let b_2 = p.b_off + min(n0 + 2u, p.n - 1u) * p.b_cs;
    let b_3 = p.b_off + min(n0 + 3u, p.n - 1u) * p.b_cs;
    var acc: array<vec4<f32>, 16>;
    var kk = 0u;
    for (; kk + 1u < p.k; kk += 2u) {
        let lo = a_pair(a_lo, kk);
        let hi = a_pair(a_hi, kk);
        let x0 = window_pair(b_0, kk, p.b_rs);
        let x1 = window_pair(b_1, kk, p.b_rs);
        let x2 = window_pair(b_2, kk, p.b_rs);
        let x3 = window_pair(b_3, kk, p.b_rs);
        add_products(&acc, lo.x, hi.x, vec4<f32>(x0.x, x1.x, x2.x, x3.x));
        add_products(&acc, lo.y, hi.y, vec4<f32>(x0.y, x1.y, x2.y, x3.y));
    }
    if (kk < p.k) {
        let x = vec4<f32>(
            window_one(b_0, kk, p.b_rs),
            window_one(b_1, kk, p.b_rs),
            window_one(b_2, kk, p.b_rs),
            window_one(b_3, kk, p.b_rs),
        );
        add_products(&acc, a_one(a_lo, kk), a_one(a_hi, kk), x);
    }
    for (var r = 0u; r < rows_in_range(row0, 16u); r++) {
        store_columns(row0 + r, n0, acc[0]);
        for (var i = 0u; i < 15u; i++) {
            acc[i] = acc[i + 1u];
        }
    }
}

// ---------------------------------------------------------------------------------------
// The same product with A read through the window instead (`gemm_subgroup_window_a`), for
// products whose A is small and B large (a recurrence step: A = h[t] [B, H], B = W_hhᵀ):
// the window's cheap loads feed the broadcasts, and the costly storage loads of B are spread
// over more rows. A subgroup owns a 32x16 tile of C: lane l loads A rows 4l .. 4l + 3 from
// the window (shared by subgroupBroadcast) and B columns 2l and 2l + 1 from storage, one
// vec2 of accumulators per row (64 accumulators a lane). A workgroup of 64 invocations
// (8 subgroups: 2 down x 4 across) owns 64 rows x 64 columns. Dispatch: (ceil(N / 64),
// ceil(M / 64), 1); no split-K, no fused step. A larger A is split into row ranges, one
// dispatch each (`ops::gemm`).

// acc[r] += A(row r of the subgroup's tile, k) · x, where lane j's a0 .. a3 hold A's rows
// 4j .. 4j + 3 at k, and x = B(k, this lane's 2 columns).
fn add_products_a(
    acc: ptr<function, array<vec2<f32>, 32>>,
    a0: f32,
    a1: f32,
    a2: f32,
    a3: f32,
    x: vec2<f32>,
) {
    (*acc)[0] = (*acc)[0] + subgroupBroadcast(a0, 0u) * x;
    (*acc)[1] = (*acc)[1] + subgroupBroadcast(a1, 0u) * x;
    (*acc)[2] = (*acc)[2] + subgroupBroadcast(a2, 0u) * x;
    (*acc)[3] = (*acc)[3] + subgroupBroadcast(a3, 0u) * x;
    (*acc)[4] = (*acc)[4] + subgroupBroadcast(a0, 1u) * x;
    (*acc)[5] = (*acc)[5] + subgroupBroadcast(a1, 1u) * x;
    (*acc)[6] = (*acc)[6] + subgroupBroadcast(a2, 1u) * x;
    (*acc)[7] = (*acc)[7] + subgroupBroadcast(a3, 1u) * x;
    (*acc)[8] = (*acc)[8] + subgroupBroadcast(a0, 2u) * x;
    (*acc)[9] = (*acc)[9] + subgroupBroadcast(a1, 2u) * x;
    (*acc)[10] = (*acc)[10] + subgroupBroadcast(a2, 2u) * x;
    (*acc)[11] = (*acc)[11] + subgroupBroadcast(a3, 2u) * x;
    (*acc)[12] = (*acc)[12] + subgroupBroadcast(a0, 3u) * x;
    (*acc)[13] = (*acc)[13] + subgroupBroadcast(a1, 3u) * x;
    (*acc)[14] = (*acc)[14] + subgroupBroadcast(a2, 3u) * x;
    (*acc)[15] = (*acc)[15] + subgroupBroadcast(a3, 3u) * x;
    (*acc)[16] = (*acc)[16] + subgroupBroadcast(a0, 4u) * x;
    (*acc)[17] = (*acc)[17] + subgroupBroadcast(a1, 4u) * x;
    (*acc)[18] = (*acc)[18] + subgroupBroadcast(a2, 4u) * x;
    (*acc)[19] = (*acc)[19] + subgroupBroadcast(a3, 4u) * x;
    (*acc)[20] = (*acc)[20] + subgroupBroadcast(a0, 5u) * x;
    (*acc)[21] = (*acc)[21] + subgroupBroadcast(a1, 5u) * x;
    (*acc)[22] = (*acc)[22] + subgroupBroadcast(a2, 5u) * x;
    (*acc)[23] = (*acc)[23] + subgroupBroadcast(a3, 5u) * x;
    (*acc)[24] = (*acc)[24] + subgroupBroadcast(a0, 6u) * x;
    (*acc)[25] = (*acc)[25] + subgroupBroadcast(a1, 6u) * x;
    (*acc)[26] = (*acc)[26] + subgroupBroadcast(a2, 6u) * x;
    (*acc)[27] = (*acc)[27] + subgroupBroadcast(a3, 6u) * x;
    (*acc)[28] = (*acc)[28] + subgroupBroadcast(a0, 7u) * x;
    (*acc)[29] = (*acc)[29] + subgroupBroadcast(a1, 7u) * x;
    (*acc)[30] = (*acc)[30] + subgroupBroadcast(a2, 7u) * x;
    (*acc)[31] = (*acc)[31] + subgroupBroadcast(a3, 7u) * x;
}

@compute @workgroup_size(64)
fn gemm_subgroup_window_a(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let group = local / 8u;
    let row0 = wid.y * 64u + (group / 4u) * 32u;
    let col0 = wid.x * 64u + (group % 4u) * 16u;
    // Out-of-range rows and columns read the last valid one (results not stored).
    let a_0 = p.a_off + min(row0 + 4u * lane, p.m - 1u) * p.a_rs;
    let a_1 = p.a_off + min(row0 + 4u * lane + 1u, p.m - 1u) * p.a_rs;
    let a_2 = p.a_off + min(row0 + 4u * lane + 2u, p.m - 1u) * p.a_rs;
    let a_3 = p.a_off + min(row0 + 4u * lane + 3u, p.m - 1u) * p.a_rs;
    let n0 = col0 + 2u * lane;
    let b_0 = p.b_off + min(n0, p.n - 1u) * p.b_cs;
    let b_1 = p.b_off + min(n0 + 1u, p.n - 1u) * p.b_cs;
    var acc: array<vec2<f32>, 32>;
    var kk = 0u;
    for (; kk + 1u < p.k; kk += 2u) {
        let r0 = window_pair(a_0, kk, p.a_cs);
        let r1 = window_pair(a_1, kk, p.a_cs);
        let r2 = window_pair(a_2, kk, p.a_cs);
        let r3 = window_pair(a_3, kk, p.a_cs);
        let x0 = b_pair(b_0, kk);
        let x1 = b_pair(b_1, kk);
        add_products_a(&acc, r0.x, r1.x, r2.x, r3.x, vec2<f32>(x0.x, x1.x));
        add_products_a(&acc, r0.y, r1.y, r2.y, r3.y, vec2<f32>(x0.y, x1.y));
    }
    if (kk < p.k) {
        add_products_a(
            &acc,
            window_one(a_0, kk, p.a_cs),
            window_one(a_1, kk, p.a_cs),
            window_one(a_2, kk, p.a_cs),
            window_one(a_3, kk, p.a_cs),
            vec2<f32>(b_one(b_0, kk), b_one(b_1, kk)),
        );
    }
    for (var r = 0u; r < rows_in_range(row0, 32u); r++) {
        store(row0 + r, n0, 0u, acc[0].x);
        store(row0 + r, n0 + 1u, 0u, acc[0].y);
        for (var i = 0u; i < 31u; i++) {
            acc[i] = acc[i + 1u];
        }
    }
}
