// Subgroup-broadcast GEMM for software adapters whose subgroups are 8 lanes (lavapipe runs
// 8 invocations as one 256-bit SIMD group, and every load with a non-constant address costs
// 8 scalar loads there: DESIGN.md). Same parameters, bindings, split-K and results as
// gemm.wgsl's kernels:
//   C[m, n] = sum_k A(m, k) * B(k, n)  (+ bias[n]) (+ bias2[n])  (+ C[m, n] if ACCUMULATE)
// A subgroup owns a 16x16 tile of C; lane l owns its columns 2l and 2l + 1 (32 accumulators).
// For each k, lane l loads A rows 2l and 2l + 1 and B columns 2l and 2l + 1 (4 loads), and
// subgroupBroadcast from each constant lane shares the 16 A values: 4 loads per 32
// multiply-adds, against 12 for the register-blocked kernel. The accumulators are unrolled by
// hand so that every index is a constant (they stay in registers). Sums run over k in
// ascending order: deterministic.
// Only valid when the subgroup size is 8 (the host checks the adapter's subgroup sizes).
// A workgroup of 64 invocations (8 subgroups: 2 down x 4 across) owns 32 rows x 64 columns.
// Dispatch: (ceil(N / 64), ceil(M / 32), S) as the register-blocked kernel.

struct GemmParams {
    m: u32, n: u32, k: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, c_rs: u32,
    bias_off: u32, bias2_off: u32,
    flags: u32,     // bit 0: add bias, bit 1: add bias2, bit 2: accumulate into C
    k_slice: u32,   // split-K: k values per slice (0: no split)
    slices: u32,
}

const ADD_BIAS: u32 = 1u;
const ADD_BIAS2: u32 = 2u;
const ACCUMULATE: u32 = 4u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn store(m: u32, n: u32, z: u32, value: f32) {
    if (m >= p.m || n >= p.n) {
        return;
    }
    if (p.k_slice > 0u) {
        c[p.c_off + z * p.m * p.n + m * p.n + n] = value;
        return;
    }
    var v = value;
    if ((p.flags & ADD_BIAS) != 0u) {
        v = v + bias[p.bias_off + n];
    }
    if ((p.flags & ADD_BIAS2) != 0u) {
        v = v + bias[p.bias2_off + n];
    }
    let at = p.c_off + m * p.c_rs + n;
    if ((p.flags & ACCUMULATE) != 0u) {
        v = c[at] + v;
    }
    c[at] = v;
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
    for (var kk = k_begin; kk < k_end; kk++) {
        let lo = a[a_lo + kk * p.a_cs];
        let hi = a[a_hi + kk * p.a_cs];
        let x0 = b[b_0 + kk * p.b_rs];
        let x1 = b[b_1 + kk * p.b_rs];
        let r0 = subgroupBroadcast(lo, 0u);
        let r1 = subgroupBroadcast(hi, 0u);
        let r2 = subgroupBroadcast(lo, 1u);
        let r3 = subgroupBroadcast(hi, 1u);
        let r4 = subgroupBroadcast(lo, 2u);
        let r5 = subgroupBroadcast(hi, 2u);
        let r6 = subgroupBroadcast(lo, 3u);
        let r7 = subgroupBroadcast(hi, 3u);
        let r8 = subgroupBroadcast(lo, 4u);
        let r9 = subgroupBroadcast(hi, 4u);
        let r10 = subgroupBroadcast(lo, 5u);
        let r11 = subgroupBroadcast(hi, 5u);
        let r12 = subgroupBroadcast(lo, 6u);
        let r13 = subgroupBroadcast(hi, 6u);
        let r14 = subgroupBroadcast(lo, 7u);
        let r15 = subgroupBroadcast(hi, 7u);
        acc_0_0 = acc_0_0 + r0 * x0;
        acc_0_1 = acc_0_1 + r0 * x1;
        acc_1_0 = acc_1_0 + r1 * x0;
        acc_1_1 = acc_1_1 + r1 * x1;
        acc_2_0 = acc_2_0 + r2 * x0;
        acc_2_1 = acc_2_1 + r2 * x1;
        acc_3_0 = acc_3_0 + r3 * x0;
        acc_3_1 = acc_3_1 + r3 * x1;
        acc_4_0 = acc_4_0 + r4 * x0;
        acc_4_1 = acc_4_1 + r4 * x1;
        acc_5_0 = acc_5_0 + r5 * x0;
        acc_5_1 = acc_5_1 + r5 * x1;
        acc_6_0 = acc_6_0 + r6 * x0;
        acc_6_1 = acc_6_1 + r6 * x1;
        acc_7_0 = acc_7_0 + r7 * x0;
        acc_7_1 = acc_7_1 + r7 * x1;
        acc_8_0 = acc_8_0 + r8 * x0;
        acc_8_1 = acc_8_1 + r8 * x1;
        acc_9_0 = acc_9_0 + r9 * x0;
        acc_9_1 = acc_9_1 + r9 * x1;
        acc_10_0 = acc_10_0 + r10 * x0;
        acc_10_1 = acc_10_1 + r10 * x1;
        acc_11_0 = acc_11_0 + r11 * x0;
        acc_11_1 = acc_11_1 + r11 * x1;
        acc_12_0 = acc_12_0 + r12 * x0;
        acc_12_1 = acc_12_1 + r12 * x1;
        acc_13_0 = acc_13_0 + r13 * x0;
        acc_13_1 = acc_13_1 + r13 * x1;
        acc_14_0 = acc_14_0 + r14 * x0;
        acc_14_1 = acc_14_1 + r14 * x1;
        acc_15_0 = acc_15_0 + r15 * x0;
        acc_15_1 = acc_15_1 + r15 * x1;
    }
    let n0 = col0 + 2u * lane;
    store(row0 + 0u, n0, wid.z, acc_0_0);
    store(row0 + 0u, n0 + 1u, wid.z, acc_0_1);
    store(row0 + 1u, n0, wid.z, acc_1_0);
    store(row0 + 1u, n0 + 1u, wid.z, acc_1_1);
    store(row0 + 2u, n0, wid.z, acc_2_0);
    store(row0 + 2u, n0 + 1u, wid.z, acc_2_1);
    store(row0 + 3u, n0, wid.z, acc_3_0);
    store(row0 + 3u, n0 + 1u, wid.z, acc_3_1);
    store(row0 + 4u, n0, wid.z, acc_4_0);
    store(row0 + 4u, n0 + 1u, wid.z, acc_4_1);
    store(row0 + 5u, n0, wid.z, acc_5_0);
    store(row0 + 5u, n0 + 1u, wid.z, acc_5_1);
    store(row0 + 6u, n0, wid.z, acc_6_0);
    store(row0 + 6u, n0 + 1u, wid.z, acc_6_1);
    store(row0 + 7u, n0, wid.z, acc_7_0);
    store(row0 + 7u, n0 + 1u, wid.z, acc_7_1);
    store(row0 + 8u, n0, wid.z, acc_8_0);
    store(row0 + 8u, n0 + 1u, wid.z, acc_8_1);
    store(row0 + 9u, n0, wid.z, acc_9_0);
    store(row0 + 9u, n0 + 1u, wid.z, acc_9_1);
    store(row0 + 10u, n0, wid.z, acc_10_0);
    store(row0 + 10u, n0 + 1u, wid.z, acc_10_1);
    store(row0 + 11u, n0, wid.z, acc_11_0);
    store(row0 + 11u, n0 + 1u, wid.z, acc_11_1);
    store(row0 + 12u, n0, wid.z, acc_12_0);
    store(row0 + 12u, n0 + 1u, wid.z, acc_12_1);
    store(row0 + 13u, n0, wid.z, acc_13_0);
    store(row0 + 13u, n0 + 1u, wid.z, acc_13_1);
    store(row0 + 14u, n0, wid.z, acc_14_0);
    store(row0 + 14u, n0 + 1u, wid.z, acc_14_1);
    store(row0 + 15u, n0, wid.z, acc_15_0);
    store(row0 + 15u, n0 + 1u, wid.z, acc_15_1);
}
